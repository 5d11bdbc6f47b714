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

from sklearn.model_selection import cross_val_score
from sklearn.svm import SVR
from threadpoolctl import threadpool_limits

from sklearn_fit_peer import load


def main():
    job = json.load(sys.stdin)
    x, y, train = load(job["path"])
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
