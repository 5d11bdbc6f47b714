"""The peer of `cargo bench --bench tpe`: what one suggestion of Optuna's TPESampler
(multivariate, constant liar, its defaults otherwise) costs over a history of N
completed trials, in-memory storage, on svr-etl's default search space.

Reads JSON {"sizes": [...], "repeats": R} on stdin; prints one line per size: the
median seconds of `study.ask()` and the three `suggest_float` calls.

    pip install optuna==5.0.0
"""

import json
import sys
import time

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

SPACE = {
    "gamma": FloatDistribution(1e-2, 1e2, log=True),
    "C": FloatDistribution(1e-2, 1e2, log=True),
    "epsilon": FloatDistribution(1e-2, 1.0, log=True),
}


def cost(n, repeats, rng):
    sampler = optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=1)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    trials = []
    for _ in range(n):
        params = {k: float(np.exp(rng.uniform(np.log(d.low), np.log(d.high))))
                  for k, d in SPACE.items()}
        trials.append(create_trial(state=TrialState.COMPLETE, params=params,
                                   distributions=SPACE, value=float(rng.normal(0.4, 0.1))))
    study.add_trials(trials)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        trial = study.ask()
        for name, d in SPACE.items():
            trial.suggest_float(name, d.low, d.high, log=True)
        times.append(time.perf_counter() - start)
        # Keep the history at n: the suggestion is not told.
        study.tell(trial, state=TrialState.FAIL)
    return float(np.median(times))


def main():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    job = json.load(sys.stdin)
    rng = np.random.default_rng(5)
    for n in job["sizes"]:
        print(cost(n, job["repeats"], rng), flush=True)


if __name__ == "__main__":
    main()
