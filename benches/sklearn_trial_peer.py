"""The peer of `cargo bench --bench whole_trial`: what scikit-learn computes for a whole
trial, with no writing: SVR fit on the training rows, predictions for every row, and
`cross_val_score(cv=5)` on the training rows in the data set's order. One thread. Reads
{"path": ..., "configs": [[gamma, C, epsilon], ...], "repeats": n} on stdin and prints
the median seconds per trial of each configuration, one per line.

    pip install scikit-learn==1.9.1
"""

import json
import sys
import time

import numpy as np
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVR
from threadpoolctl import threadpool_limits


def main():
    job = json.load(sys.stdin)
    rows = [json.loads(line) for line in open(job["path"]) if line.strip()]
    names = [k for k in rows[0] if k not in ("point_id", "is_train", "y_true")]
    x = np.array([[r[k] for k in names] for r in rows])
    y = np.array([r["y_true"] for r in rows])
    train = np.array([r["is_train"] for r in rows])
    x_train, y_train = x[train], y[train]
    with threadpool_limits(1):
        for gamma, c, epsilon in job["configs"]:
            times = []
            for _ in range(job["repeats"]):
                start = time.perf_counter()
                svr = SVR(kernel="rbf", gamma=gamma, C=c, epsilon=epsilon)
                svr.fit(x_train, y_train).predict(x)
                cross_val_score(svr, x_train, y_train, cv=5)
                times.append(time.perf_counter() - start)
            print(sorted(times)[len(times) // 2], flush=True)


if __name__ == "__main__":
    main()
