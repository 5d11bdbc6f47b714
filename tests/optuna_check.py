"""Checks an `svr-etl export --optuna` journal with Optuna's own tools, for
tests/optuna.rs:

    python3 tests/optuna_check.py JOURNAL HYPER_DIR SCREENSHOT.png

Optuna's JournalStorage loads the journal as one maximizing study holding every hyper
record under HYPER_DIR, with equal params, values and attributes; its importances
cover the three parameters. Then optuna-dashboard serves the journal, and headless
Chromium renders the trial list opened on the best trial: the page names that trial's
value and the screenshot is not blank. Prints one line of figures.
"""

import glob
import html
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_check import png_distinct_bytes  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def hyper_records(root):
    records = {}
    for path in glob.glob(os.path.join(root, "dt=*", "*.json")):
        for line in open(path, encoding="utf-8"):
            if line.strip():
                # As text, as the export writes it: the ids are beyond a double's digits.
                r = json.loads(line, parse_int=str)
                records[r["hyper_id"]] = r
    return records


def check_study(journal, hyper_dir):
    storage = JournalStorage(JournalFileBackend(journal))
    study = optuna.load_study(study_name=None, storage=storage)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.metric_names == ["cv_r2"], study.metric_names
    records = hyper_records(hyper_dir)
    assert len(study.trials) == len(records), f"{len(study.trials)} trials, {len(records)} records"
    for trial in study.trials:
        r = records[trial.user_attrs["hyper_id"]]
        assert trial.params == {"gamma": float(r["gamma"]), "C": float(r["C"]), "epsilon": float(r["epsilon"])}, (trial.params, r)
        for name in ("gamma", "C", "epsilon"):
            dist = trial.distributions[name]
            assert isinstance(dist, optuna.distributions.FloatDistribution) and dist.log, dist
        ok = r["status"] == "ok"
        assert trial.state == (TrialState.COMPLETE if ok else TrialState.FAIL), trial.state
        if ok:
            assert trial.value == float(r["cv_r2"]), (trial.value, r["cv_r2"])
        assert trial.user_attrs["test_r2"] == (None if r["test_r2"] is None else float(r["test_r2"]))
        assert trial.user_attrs["host"] == r["host"]
        assert trial.datetime_start <= trial.datetime_complete
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers)))
    importances = optuna.importance.get_param_importances(study)
    assert set(importances) == {"gamma", "C", "epsilon"}, importances
    return study, importances


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_dashboard(journal, study, shot):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        ["optuna-dashboard", journal, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                answer = json.load(urllib.request.urlopen(f"{base}/api/studies"))
                break
            except OSError:
                assert time.time() < deadline, "optuna-dashboard did not answer"
                time.sleep(0.2)
        [summary] = answer["study_summaries"]
        assert summary["study_name"] == study.study_name, summary
        best = study.best_trial
        url = f"{base}/dashboard/studies/{summary['study_id']}/trials?numbers={best.number}"
        with tempfile.TemporaryDirectory() as profile:
            common = [
                "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars", "--window-size=1400,1000",
                "--virtual-time-budget=15000", f"--user-data-dir={profile}",
            ]
            dom = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
            subprocess.run(common + [f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    finally:
        server.terminate()
        server.wait()
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    assert f"Trial {best.number} (trial_id={best._trial_id})" in text, "the best trial is not open"
    assert "Best Trial" in text, "the best trial is not marked"
    assert repr(best.value) in text, f"the page does not name the best value {best.value!r}"
    distinct = png_distinct_bytes(shot)
    assert distinct > 50, f"the screenshot looks blank ({distinct} distinct byte values)"
    return best, distinct


def main():
    journal, hyper_dir, shot = sys.argv[1:4]
    study, importances = check_study(journal, hyper_dir)
    best, distinct = check_dashboard(journal, study, shot)
    shares = ", ".join(f"{k} {v:.2f}" for k, v in importances.items())
    print(
        f"optuna {optuna.__version__}: {len(study.trials)} trials equal to the records; "
        f"importances {shares}; the dashboard shows best trial {best.number} "
        f"value {best.value!r}; screenshot with {distinct} distinct byte values"
    )


if __name__ == "__main__":
    main()
