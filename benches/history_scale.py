"""What the study history costs at start: a local sink holding N trials of the study
(hyper records as the daemon writes them, spread over 30 days), then one
`svr-etl once` with the TPE sampler (which reads the whole history first) against
one with the random sampler (which reads none), same run.

    cargo build --release
    python3 benches/history_scale.py [--trials 100000]

Prints wall time and peak resident memory of both, and the n_history the TPE trial
saw.
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = ROOT / "target/release/svr-etl"
EPOCH_MS = 1_735_689_600_000


def run(sink, sampler):
    env = dict(os.environ, SVR_ETL__SEARCH__SAMPLER=sampler, SVR_ETL__LOG__LEVEL="warn")
    start = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", BIN, "once", "--sink", sink],
                         env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    peak_kib = int(out.stderr.strip().splitlines()[-1])
    return wall, peak_kib / 1024, out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=100_000)
    args = ap.parse_args()
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as sink:
        # One real trial names the study.
        _, _, line = run(sink, "random")
        hyper = re.search(r"hyper=file://(\S+)", line).group(1)
        template = json.loads(pathlib.Path(hyper).read_text())
        now_ms = int(time.time() * 1000)
        for i in range(args.trials):
            ms = now_ms - (args.trials - i) * (30 * 86_400_000 // args.trials)
            hyper_id = ((ms - EPOCH_MS) << 22) | 12345
            day = time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))
            record = dict(template, hyper_id=hyper_id,
                          gamma=float(10 ** rng.uniform(-2, 2)), C=float(10 ** rng.uniform(-2, 2)),
                          epsilon=float(10 ** rng.uniform(-2, 0)),
                          cv_r2=float(rng.uniform(0, 0.45)), sampler="tpe")
            path = pathlib.Path(sink) / "hyper" / f"dt={day}" / f"{hyper_id}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record) + "\n")
        subprocess.run(["sync"], check=True)
        r_wall, r_mem, _ = run(sink, "random")
        t_wall, t_mem, _ = run(sink, "tpe")
        newest = max((pathlib.Path(sink) / "hyper").rglob("*.json"))
        seen = json.loads(newest.read_text())["n_history"]
        print(f"history of {args.trials} trials in a local sink")
        print(f"| svr-etl once | wall | peak memory |")
        print(f"| --- | --- | --- |")
        print(f"| random (reads no history) | {r_wall:.2f} s | {r_mem:.0f} MiB |")
        print(f"| tpe (reads {seen} trials first) | {t_wall:.2f} s | {t_mem:.0f} MiB |")


if __name__ == "__main__":
    main()
