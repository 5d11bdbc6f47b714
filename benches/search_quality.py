"""How well each sampler searches: svr-etl TPE, svr-etl random and Optuna 5's
TPESampler, all scored by the same objective (svr-etl's cv_r2: the mean R^2 of
KFold(5) on the training rows, which scikit-learn's cross_val_score equals to the
last bit), over svr-etl's default ranges, for a budget of trials and many seeds.
Then two svr-etl processes sharing one sink, with the constant liar on and off.

    cargo build --release
    pip install optuna==5.0.0 scikit-learn==1.9.1
    python3 benches/search_quality.py [--seeds 30] [--budget 100]

Prints, per sampler, the median [quartiles] of the best cv_r2 found after 20, 40
and 100 trials, the test R^2 of the configuration each run picks by cv_r2, and the
trials each run needs to reach random search's median best at the full budget.
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import subprocess
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = ROOT / "target/release/svr-etl"
CHECKPOINTS = (20, 40, 100)


def records(sink):
    rows = []
    for path in (pathlib.Path(sink) / "hyper").rglob("*.json"):
        rows.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return sorted(rows, key=lambda r: r["hyper_id"])


def svr_etl_runs(sink, sampler, seeds, trials, liar=True):
    """Runs `svr-etl once` processes side by side on one sink, one per seed."""
    env = dict(os.environ, SVR_ETL__SEARCH__SAMPLER=sampler,
               SVR_ETL__SEARCH__CONSTANT_LIAR=str(liar).lower(), SVR_ETL__LOG__LEVEL="warn")
    procs = [subprocess.Popen([BIN, "once", "--trials", str(trials), "--sink", sink],
                              env=dict(env, SVR_ETL__SEARCH__SEED=str(s)),
                              stdout=subprocess.DEVNULL, cwd=ROOT) for s in seeds]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"svr-etl once failed ({p.returncode}); is target/release current?")
    rows = records(sink)
    return [(r["cv_r2"] if r["cv_r2"] is not None else -np.inf, r["test_r2"]) for r in rows]


def optuna_run(seed, budget, data):
    import optuna
    from sklearn.metrics import r2_score
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVR

    x, y, train = data
    xt, yt = x[train], y[train]

    def objective(trial):
        model = SVR(kernel="rbf", gamma=trial.suggest_float("gamma", 1e-2, 1e2, log=True),
                    C=trial.suggest_float("C", 1e-2, 1e2, log=True),
                    epsilon=trial.suggest_float("epsilon", 1e-2, 1.0, log=True))
        return cross_val_score(model, xt, yt, cv=5).mean()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=budget)
    out = []
    for t in study.trials:
        model = SVR(kernel="rbf", gamma=t.params["gamma"], C=t.params["C"],
                    epsilon=t.params["epsilon"]).fit(xt, yt)
        out.append((t.value, r2_score(y[~train], model.predict(x[~train]))))
    return out


def load_data():
    rows = [json.loads(line) for line in (ROOT / "assets/diabetes.json").open()]
    names = [k for k in rows[0] if k not in ("point_id", "is_train", "y_true")]
    x = np.array([[r[k] for k in names] for r in rows])
    y = np.array([r["y_true"] for r in rows])
    train = np.array([r["is_train"] for r in rows])
    return x, y, train


def best_so_far(run):
    return np.maximum.accumulate([cv for cv, _ in run])


def summary(name, runs, target, budget):
    def q(values):
        a = np.percentile(values, [25, 50, 75])
        return f"{a[1]:.4f} [{a[0]:.4f}, {a[2]:.4f}]"

    cells = [q([best_so_far(r)[n - 1] for r in runs]) for n in CHECKPOINTS if n <= budget]
    picks = [r[int(np.argmax([cv for cv, _ in r]))][1] for r in runs]
    reach = []
    for r in runs:
        hit = np.nonzero(best_so_far(r) >= target)[0]
        reach.append(hit[0] + 1 if hit.size else budget + 1)
    need = np.median(reach)
    need_s = f"{need:.0f}" if need <= budget else f">{budget}"
    return f"| {name} | " + " | ".join(cells) + f" | {q(picks)} | {need_s} |"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--budget", type=int, default=100)
    args = ap.parse_args()
    seeds = range(1, args.seeds + 1)
    budget = args.budget
    data = load_data()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        def one(kind, seed):
            sink = os.path.join(tmp, f"{kind}-{seed}")
            if kind == "tpe" or kind == "random":
                return svr_etl_runs(sink, kind, [seed], budget)
            liar = kind == "tpe2-liar"
            half = budget // 2
            return svr_etl_runs(sink, "tpe", [2 * seed, 2 * seed + 1], half, liar)

        kinds = ["tpe", "random", "tpe2-liar", "tpe2-noliar"]
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            jobs = {(k, s): pool.submit(one, k, s) for k in kinds for s in seeds}
            for (k, s), job in jobs.items():
                results.setdefault(k, []).append(job.result())
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as pool:
        results["optuna"] = list(pool.map(optuna_run, seeds, [budget] * len(seeds),
                                          [data] * len(seeds)))
    target = float(np.median([best_so_far(r)[budget - 1] for r in results["random"]]))
    head = " | ".join(f"best cv_r2 at {n}" for n in CHECKPOINTS if n <= budget)
    print(f"{len(seeds)} seeds, budget {budget}; target = random's median best at "
          f"{budget}: {target:.4f}")
    print(f"| sampler | {head} | test R^2 of the pick | trials to target |")
    print("|---" * (3 + len([n for n in CHECKPOINTS if n <= budget])) + "|")
    names = {"tpe": "svr-etl TPE", "optuna": "Optuna 5 TPESampler", "random": "svr-etl random",
             "tpe2-liar": "svr-etl TPE, 2 processes, constant liar on",
             "tpe2-noliar": "svr-etl TPE, 2 processes, constant liar off"}
    for k in ["tpe", "optuna", "random", "tpe2-liar", "tpe2-noliar"]:
        print(summary(names[k], results[k], target, budget))


if __name__ == "__main__":
    main()
