"""The peer of `cargo bench --bench large`: fits scikit-learn's SVR on the data set
file the benchmark wrote, predicts every row, and with FOLDS above 0 scores it by
`cross_val_score(cv=FOLDS)` on the training rows; prints seconds and peak resident MiB.

    python3 benches/large_peer.py fit PATH [FOLDS]
"""

import json
import resource
import sys
import time

import numpy as np


def fit(path, folds):
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVR
    from threadpoolctl import threadpool_limits

    rows = [json.loads(line) for line in open(path)]
    names = [k for k in rows[0] if k not in ("point_id", "is_train", "y_true")]
    x = np.array([[r[k] for k in names] for r in rows])
    y = np.array([r["y_true"] for r in rows])
    train = np.array([r["is_train"] for r in rows])
    with threadpool_limits(1):
        start = time.perf_counter()
        svr = SVR(kernel="rbf", gamma=0.1, C=1.0, epsilon=0.1)
        svr.fit(x[train], y[train]).predict(x)
        if folds:
            cross_val_score(svr, x[train], y[train], cv=folds)
        secs = time.perf_counter() - start
    print(secs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    fit(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
