"""The seed pipeline's per-tick job, as the peer for benches/trial.rs.

What one cron tick of the replaced pipeline did: a Python process loads the data set,
draws gamma, C and epsilon, fits scikit-learn's SVR, writes <ts>_hyper.json and
<ts>_fact.json, then two `aws s3 cp` processes upload them (here: two Python processes
uploading with boto3, the library under the AWS CLI) and the files are deleted.

    python3 benches/seed_peer.py ENDPOINT BUCKET
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

UPLOAD = """
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench")
s3.upload_file(sys.argv[3], sys.argv[2], sys.argv[4])
"""


def fit(workdir: pathlib.Path) -> list[pathlib.Path]:
    import numpy as np
    from sklearn.svm import SVR

    root = pathlib.Path(__file__).resolve().parents[1]
    rows = [json.loads(l) for l in (root / "assets/diabetes.json").open()]
    feats = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    x = np.array([[r[k] for k in feats] for r in rows])
    y = np.array([r["y_true"] for r in rows])
    train = np.array([r["is_train"] for r in rows])
    rng = np.random.default_rng()
    gamma, c, eps = 10 ** rng.uniform(-2, 2), 10 ** rng.uniform(-2, 2), 10 ** rng.uniform(-2, 0)
    model = SVR(kernel="rbf", gamma=gamma, C=c, epsilon=eps).fit(x[train], y[train])
    pred = model.predict(x)
    ts = int(time.time() * 1000)
    hyper = workdir / f"{ts}_hyper.json"
    fact = workdir / f"{ts}_fact.json"
    hyper.write_text(json.dumps({"hyper_id": ts, "gamma": gamma, "C": c, "epsilon": eps}) + "\n")
    with fact.open("w") as f:
        for r, p in zip(rows, pred):
            f.write(json.dumps({"hyper_id": ts, "point_id": r["point_id"], "y_pred": p}) + "\n")
    return [hyper, fact]


def main() -> None:
    endpoint, bucket = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as d:
        # The fit runs in its own process, as run.py did under runpipeline.sh.
        out = subprocess.run([sys.executable, __file__, endpoint, bucket, "--fit-into", d],
                             check=True, capture_output=True, text=True)
        files = [pathlib.Path(p) for p in out.stdout.split()]
        for f, prefix in zip(files, ["hyper", "fact"]):
            subprocess.run([sys.executable, "-c", UPLOAD, endpoint, bucket, str(f),
                            f"{prefix}/{f.name}"], check=True)
            os.remove(f)


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[3] == "--fit-into":
        print(" ".join(str(p) for p in fit(pathlib.Path(sys.argv[4]))))
    else:
        main()
