"""The peer of `cargo bench --bench engines`: scikit-learn's SVR on the same data set
and configurations, fit on the training rows and predicting every row, one thread.
Reads {"path": ..., "configs": [[gamma, C, epsilon], ...], "repeats": n} on stdin and
prints the median seconds per trial of each configuration, one per line.

    pip install scikit-learn==1.9.1
"""

import json
import sys
import time

import numpy as np
from sklearn.svm import SVR
from threadpoolctl import threadpool_limits


def load(path):
    """The data set at `path`: features, targets and the training mask, in file order."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    names = [k for k in rows[0] if k not in ("point_id", "is_train", "y_true")]
    x = np.array([[r[k] for k in names] for r in rows])
    y = np.array([r["y_true"] for r in rows])
    train = np.array([r["is_train"] for r in rows])
    return x, y, train


def main():
    job = json.load(sys.stdin)
    x, y, train = load(job["path"])
    with threadpool_limits(1):
        for gamma, c, epsilon in job["configs"]:
            times = []
            for _ in range(job["repeats"]):
                start = time.perf_counter()
                SVR(kernel="rbf", gamma=gamma, C=c, epsilon=epsilon).fit(x[train], y[train]).predict(x)
                times.append(time.perf_counter() - start)
            print(sorted(times)[len(times) // 2], flush=True)


if __name__ == "__main__":
    main()
