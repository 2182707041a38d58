"""Searcher overhead: hpo's TPE path against bare Optuna ask/tell, without Ray's scheduling.

1,000 trials x 10 float parameters (5 uniform, 5 log-uniform) with Optuna's TPE sampler
(the same settings and seed in every row), each trial's value a fixed function of its params,
so that the time is all the searcher's. Ray's trial scheduling is left out (`overhead.py` and
`utilization.py` measure it): its noise on a shared 2-core machine is larger than the
difference measured here. In one run, in one process, alternating rows:

- bare Optuna: `study.ask()`, `trial.suggest_float(...)` x 10, `study.tell(...)`;
- hpo's define-by-run path: the sampler of `hpo.search._searchers.OptunaSearcher`, and
  `Space.optuna_define_by_run()` called on each `study.ask()` trial, then `study.tell(...)`;
- the same as Ray calls it in an hpo run: the `OptunaSearch` that `OptunaSearcher.build`
  returns, `suggest(trial_id)` and `on_trial_complete(trial_id, result)` (no Ray cluster).

    python benchmarks/searcher.py            # 1,000 trials, each row once
    python benchmarks/searcher.py --quick    # 200 trials, median of 3

Goal (issue 6): hpo at most 1.15x the time of bare Optuna.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable, Mapping
from typing import Any

from _common import MACHINE, load_average, print_table, quiet_libraries, timed, verdict

GOAL = 1.15
SEED = 0
# 5 uniform in [0, 1] and 5 log-uniform in [1e-5, 1e-1], under a section as in a spec.
PARAMS = {f"model.p{i}": (1e-5, 1e-1, True) if i % 2 else (0.0, 1.0, False) for i in range(10)}


def objective(params: Mapping[str, float]) -> float:
    """A fixed function of the params (keys dotted or with `/`): the same value in every row."""
    total = 0.0
    for key, value in params.items():
        *_, log = PARAMS[key.replace("/", ".")]
        total += (math.log10(value) + 3.0) ** 2 if log else (value - 0.3) ** 2
    return total


def searcher_spec() -> Any:
    from hpo.search._searchers import OptunaSearcher

    return OptunaSearcher(name="optuna")  # TPE, 10 start-up trials, multivariate: hpo's default


def hpo_space() -> Any:
    from hpo.search._space import FloatDist, Space

    return Space(
        {
            key: FloatDist(type="float", low=low, high=high, log=log)
            for key, (low, high, log) in PARAMS.items()
        }
    )


def bare_optuna(num_trials: int) -> list[float]:
    """Plain Optuna ask/tell with the sampler hpo's searcher would build."""
    import optuna

    spec = searcher_spec()
    sampler = optuna.samplers.TPESampler(
        seed=SEED, n_startup_trials=spec.n_startup_trials, multivariate=spec.multivariate
    )
    study = optuna.create_study(direction="minimize", sampler=sampler)
    values = []
    for _ in range(num_trials):
        trial = study.ask()
        params = {
            key.replace(".", "/"): trial.suggest_float(key.replace(".", "/"), low, high, log=log)
            for key, (low, high, log) in PARAMS.items()
        }
        values.append(objective(params))
        study.tell(trial, values[-1])
    return values


def hpo_define_by_run(num_trials: int) -> list[float]:
    """hpo's sampler and define-by-run function in the same ask/tell loop."""
    import optuna

    spec = searcher_spec()
    study = optuna.create_study(direction="minimize", sampler=spec._study_sampler(SEED))
    define = hpo_space().optuna_define_by_run()
    values = []
    for _ in range(num_trials):
        trial = study.ask()
        define(trial)
        values.append(objective(trial.params))
        study.tell(trial, values[-1])
    return values


def hpo_ray_searcher(num_trials: int) -> list[float]:
    """The searcher object an hpo run hands Ray, driven the way Ray's controller drives it."""
    search, _ = searcher_spec().build(
        hpo_space(), {}, metric="loss", mode="min", seed=SEED, num_samples=num_trials
    )
    values = []
    for i in range(num_trials):
        config = search.suggest(str(i))
        params = {f"model.{key}": value for key, value in config["model"].items()}
        values.append(objective(params))
        search.on_trial_complete(str(i), {"loss": values[-1]})
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 trials, median of 3")
    args = parser.parse_args()
    quiet_libraries()
    trials, repeats = (200, 3) if args.quick else (1000, 1)

    rows_to_run: list[tuple[str, Callable[[int], list[float]]]] = [
        ("bare Optuna ask/tell", bare_optuna),
        ("hpo: OptunaSearcher sampler + Space.optuna_define_by_run()", hpo_define_by_run),
        ("hpo as Ray calls it: OptunaSearch.suggest / on_trial_complete", hpo_ray_searcher),
    ]
    # Imports (Ray's OptunaSearch brings in Ray, about a second) are not the searcher's time.
    for _, run in rows_to_run:
        run(2)
    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    times: dict[str, list[float]] = {label: [] for label, _ in rows_to_run}
    values: dict[str, list[float]] = {}
    # Alternate the rows, so that a burst of load on the shared machine hits all of them.
    for _ in range(repeats):
        for label, run in rows_to_run:
            elapsed, values[label] = timed(lambda run=run: run(trials))
            times[label].append(elapsed)
            print(f"  {label}: {trials} trials in {elapsed:.2f} s", flush=True)

    bare = statistics.median(times["bare Optuna ask/tell"])
    baseline = values["bare Optuna ask/tell"]
    rows = []
    for label, _ in rows_to_run:
        wall = statistics.median(times[label])
        ratio = wall / bare
        is_hpo = label.startswith("hpo")
        same = all(
            math.isclose(a, b, rel_tol=1e-9) for a, b in zip(values[label], baseline, strict=True)
        )
        rows.append(
            (
                label,
                wall,
                1e3 * wall / trials,
                f"{ratio:.3f}x",
                "yes" if same else "no",
                f"<= {GOAL}x" if is_hpo else "",
                f"{ratio / GOAL:.3f}" if is_hpo else "",
                verdict(ratio <= GOAL) if is_hpo else "",
            )
        )
    print_table(
        f"TPE, {trials} trials x {len(PARAMS)} parameters, "
        + ("median of 3" if repeats > 1 else "one run each"),
        ["", "s", "ms/trial", "x bare", "same trials", "goal", "ratio to goal", ""],
        rows,
    )
    print(
        "\nRatio to goal: below 1 meets it. 'same trials': every trial's value equals bare "
        "Optuna's (same sampler, same seed). Numbers from a shared, noisy machine."
        f" At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
