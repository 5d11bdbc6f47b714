"""A simulated month of trials in a local sink, read as JSON and then compacted: what
the daily compaction saves the readers.

    cargo build --release
    python3 benches/compaction_month.py [--days 30] [--per-day 1440]

Writes DAYS x PER_DAY trials (hyper record and 442 predictions each, as the daemon
writes them, in one study) for September 2025, then measures in the same run, on the
JSON alone and after `svr-etl compact --day` of every day: objects and bytes, the wall
time and peak memory of `svr-etl leaderboard` and of loading the study history (one
`svr-etl once` with the TPE sampler, which reads the whole history before its trial;
a random-sampler `once`, which reads none, is the floor). The month lies more than a
week back, so the readers take compacted days from Parquet alone.
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
START = "2025-09-01"


def timed(args, env=None):
    """Wall seconds, peak MiB and stdout of one svr-etl command."""
    env = dict(os.environ, SVR_ETL__LOG__LEVEL="warn", **(env or {}))
    start = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", BIN, *args], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    peak_kib = int(out.stderr.strip().splitlines()[-1])
    return wall, peak_kib / 1024, out.stdout


def footprint(sink, prefixes):
    objects = size = 0
    for prefix in prefixes:
        for path in (sink / prefix).rglob("*"):
            if path.is_file():
                objects += 1
                size += path.stat().st_size
    return objects, size


def write_month(sink, days, per_day, rng):
    # One real trial publishes the data set and names the study.
    out = subprocess.run(["faketime", f"{START} 00:00:10", BIN, "once", "--sink", sink],
                         env=dict(os.environ, TZ="UTC", SVR_ETL__LOG__LEVEL="warn"),
                         capture_output=True, text=True, check=True, cwd=ROOT)
    hyper = pathlib.Path(re.search(r"hyper=file://(\S+)", out.stdout).group(1))
    template = json.loads(hyper.read_text())
    fact = pathlib.Path(re.search(r"fact=file://(\S+)", out.stdout).group(1))
    points = [json.loads(line)["point_id"] for line in fact.read_text().splitlines()]
    start_ms = int(time.mktime(time.strptime(START, "%Y-%m-%d")) * 1000
                   - time.timezone * 1000)
    step_ms = 86_400_000 // per_day
    for d in range(days):
        day_ms = start_ms + d * 86_400_000
        day = time.strftime("%Y-%m-%d", time.gmtime(day_ms / 1000))
        (sink / "hyper" / f"dt={day}").mkdir(parents=True, exist_ok=True)
        (sink / "fact" / f"dt={day}").mkdir(parents=True, exist_ok=True)
        for i in range(per_day):
            ms = day_ms + i * step_ms + 1000
            hyper_id = ((ms - EPOCH_MS) << 22) | 4242
            created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))
            created += f".{ms % 1000:03d}Z"
            record = dict(template, hyper_id=hyper_id, created_at=created,
                          gamma=float(10 ** rng.uniform(-2, 2)),
                          C=float(10 ** rng.uniform(-2, 2)),
                          epsilon=float(10 ** rng.uniform(-2, 0)),
                          cv_r2=float(rng.uniform(0, 0.45)),
                          test_r2=float(rng.uniform(0, 0.5)))
            name = f"{hyper_id}.json"
            preds = rng.normal(150, 60, len(points))
            (sink / "fact" / f"dt={day}" / name).write_text("".join(
                f'{{"hyper_id":{hyper_id},"point_id":{p},"y_pred":{y!r}}}\n'
                for p, y in zip(points, preds.tolist())))
            (sink / "hyper" / f"dt={day}" / name).write_text(json.dumps(record) + "\n")
    return [time.strftime("%Y-%m-%d", time.gmtime((start_ms + d * 86_400_000) / 1000))
            for d in range(days)]


def readers(sink):
    board = timed(["leaderboard", "--sink", sink, "--format", "csv"])
    history = timed(["once", "--sink", sink], {"SVR_ETL__SEARCH__SAMPLER": "tpe"})
    floor = timed(["once", "--sink", sink], {"SVR_ETL__SEARCH__SAMPLER": "random"})
    seen = re.search(r"hyper=file://(\S+)", history[2]).group(1)
    n_history = json.loads(pathlib.Path(seen).read_text())["n_history"]
    return {"leaderboard": board[:2], "rows": board[2].count("\n") - 1,
            "tpe_once": history[:2], "random_once": floor[:2], "n_history": n_history}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--per-day", type=int, default=1440)
    args = ap.parse_args()
    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as tmp:
        sink = pathlib.Path(tmp)
        t = time.perf_counter()
        days = write_month(sink, args.days, args.per_day, rng)
        print(f"wrote {args.days} x {args.per_day} trials in {time.perf_counter() - t:.0f} s")
        json_files = footprint(sink, ["hyper", "fact"])
        before = readers(str(sink))
        t = time.perf_counter()
        for day in days:
            timed(["compact", "--sink", str(sink), "--day", day])
        compact_s = time.perf_counter() - t
        parquet_files = footprint(sink, ["hyper_parquet", "fact_parquet"])
        after = readers(str(sink))

    print(f"\n{'':34} {'JSON only':>14} {'compacted':>14} {'ratio':>8}")
    print(f"{'objects':34} {json_files[0]:>14,} {parquet_files[0]:>14,} "
          f"{parquet_files[0] / json_files[0]:>8.4f}")
    print(f"{'bytes':34} {json_files[1]:>14,} {parquet_files[1]:>14,} "
          f"{parquet_files[1] / json_files[1]:>8.4f}")
    for key, label in [("leaderboard", "svr-etl leaderboard"),
                       ("tpe_once", "once with TPE (loads the history)"),
                       ("random_once", "once with random (no history)")]:
        (bw, bm), (aw, am) = before[key], after[key]
        print(f"{label + ' s':34} {bw:>14.2f} {aw:>14.2f} {aw / bw:>8.3f}")
        print(f"{label + ' MiB':34} {bm:>14.0f} {am:>14.0f} {am / bm:>8.3f}")
    print(f"{'leaderboard rows':34} {before['rows']:>14} {after['rows']:>14}")
    print(f"{'n_history seen by TPE':34} {before['n_history']:>14} {after['n_history']:>14}")
    print(f"\ncompacting {len(days)} days: {compact_s:.1f} s "
          f"({compact_s / len(days):.2f} s a day)")


if __name__ == "__main__":
    main()
