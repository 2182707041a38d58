"""The results store against Optuna's SQLite storage: writing speed and reading big experiments.

Four measurements, in one run:

1. Results per second through hpo's store callback (`StoreRecorder`, the code Ray calls on the
   driver), fed by stand-in trials as fast as Python allows, with its own batching.
2. A result-heavy Ray Tune run (trials that report as fast as they can, Ray at its fastest
   settings) with and without the store callback: the wall time the store adds.
3. `Experiment.trials()` and `.history()` on 10,000 trials x 50 iterations, beside Optuna's
   `study.trials_dataframe()` (and a history table built from its trials) on a study of the
   same size in SQLite. Both stores are opened afresh for every read, as a user's session does.

    python benchmarks/store.py            # 10,000 trials x 50 iterations (several minutes)
    python benchmarks/store.py --quick    # 2,000 trials x 50 iterations

Goals (issue 5): writing adds under 2% to a result-heavy run; `.trials()` on 10,000 trials
under 1 s and at least 10x faster than Optuna's `trials_dataframe()`.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    MACHINE,
    RAY_FAST_ENVIRONMENT,
    environment,
    load_average,
    local_ray,
    print_table,
    quiet_libraries,
    timed,
    verdict,
)

SPEC = Path(__file__).resolve().parent.parent / "search_spaces" / "digits_mlp.yaml"
ITERATIONS = 50
EXPERIMENT = "bench"
# What hpo's trainable reports every epoch (`Trainer.train_epoch`, plus Ray's total time).
METRICS = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "lr",
    "grad_norm",
    "epoch_time_s",
    "time_total_s",
)


@dataclass
class FakeTrial:
    """What hpo's callback reads of a Ray `Trial`."""

    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] = field(default_factory=dict)
    checkpoint: Any = None
    path: str | None = None  # no folder: the trial keeps no checkpoint here


def _spec() -> Any:
    from hpo.spec._spec import load_spec

    return load_spec(SPEC)


def _epoch_metrics(rng: Any, trial: int, epoch: int) -> dict[str, float]:
    """One epoch's metrics of a learning curve, different for every trial."""
    accuracy = 1 - 0.9 / (1 + epoch * (0.1 + 0.9 * rng.random()))
    return {
        "epoch": float(epoch),
        "train_loss": 1 - accuracy + 0.01 * rng.random(),
        "val_loss": 1 - accuracy,
        "val_accuracy": accuracy,
        "lr": 1e-3,
        "grad_norm": rng.random(),
        "epoch_time_s": 0.05 + 0.01 * rng.random(),
        "time_total_s": 0.05 * epoch,
    }


def _trial_params(spec: Any, rng: Any, count: int) -> list[dict[str, Any]]:
    """Searched values for `count` trials, one draw from each distribution's range."""
    params = []
    for _ in range(count):
        values: dict[str, Any] = {}
        for key, dist in spec.search_space().dists.items():
            points = dist.points()
            if points:
                values[key] = points[int(rng.integers(len(points)))]
            elif dist.type == "int":
                values[key] = int(rng.integers(dist.low, dist.high + 1))
            else:
                values[key] = float(dist.low + (dist.high - dist.low) * rng.random())
        params.append(values)
    return params


def _new_experiment(url: str, spec: Any, num_trials: int) -> tuple[Any, int]:
    from hpo.store import Store

    store = Store(url)
    spec_data = {**spec.model_dump(mode="json"), "num_trials": num_trials}
    experiment_id, _ = store.create_experiment(EXPERIMENT, spec_data, storage_path="/unused")
    return store, experiment_id


def _recorder(store: Any, experiment_id: int, spec: Any) -> Any:
    """hpo's store writing as the runner builds it: the trial event stream feeding the store
    recorder (no trial pruned by a scheduler here)."""
    import hpo.events

    recorder = hpo.events.StoreRecorder(store, experiment_id, spec.metric)
    return hpo.events.TrialStream([recorder], spec.search_space(), spec.metric, spec.mode)


# --- 1. the store callback ------------------------------------------------------------------


def callback_throughput(url: str, num_trials: int, results_per_trial: int) -> dict[str, float]:
    """Feed `StoreRecorder` results as Ray would (two trials at a time), as fast as possible.

    Returns results per second and the callback's time per result, its flushes included.
    """
    import numpy as np

    from hpo.search._space import set_path

    spec = _spec()
    rng = np.random.default_rng(0)
    store, experiment_id = _new_experiment(url, spec, num_trials)
    recorder = _recorder(store, experiment_id, spec)
    trials: list[FakeTrial] = []
    for number, params in enumerate(_trial_params(spec, rng, num_trials)):
        config = copy.deepcopy(spec.base_config())
        for key, value in params.items():
            set_path(config, key, value)
        trials.append(FakeTrial(f"t{number:05d}", config))
    curves = [
        [_epoch_metrics(rng, n, e + 1) for e in range(results_per_trial)] for n in range(num_trials)
    ]

    started = time.perf_counter()
    iteration = 0
    for pair in range(0, num_trials, 2):  # two trials run at once, as on 2 workers
        running = trials[pair : pair + 2]
        for trial in running:
            recorder.on_trial_start(iteration, trials, trial)
        for step in range(results_per_trial):
            iteration += 1
            recorder.on_step_begin(iteration, trials)
            for trial in running:
                number = int(trial.trial_id[1:])
                result = {**curves[number][step], "training_iteration": step + 1}
                trial.last_result = result
                recorder.on_trial_result(iteration, trials, trial, result)
            recorder.on_step_end(iteration, trials)
        for trial in running:
            trial.last_result["trial_finished"] = True
            recorder.on_trial_complete(iteration, trials, trial)
    recorder.on_experiment_end(trials)
    elapsed = time.perf_counter() - started
    total = num_trials * results_per_trial
    return {"results": total, "seconds": elapsed, "per_s": total / elapsed}


# --- 2. a result-heavy Ray run ----------------------------------------------------------------


def _chatty_trainable(config: dict[str, Any]) -> None:
    """A trial that does no work and reports `reports` results of eight metrics."""
    from ray import tune

    for step in range(1, config["reports"] + 1):
        accuracy = 1 - 1 / (1 + step)
        tune.report(
            {
                "epoch": step,
                "train_loss": 1 - accuracy,
                "val_loss": 1 - accuracy,
                "val_accuracy": accuracy,
                "lr": 1e-3,
                "grad_norm": 0.5,
                "epoch_time_s": 0.0,
                "trial_finished": step == config["reports"],
            }
        )


def _timed(callback: Any) -> Any:
    """A Ray callback that forwards every hook to `callback` and adds up the time they take
    on the driver (`.seconds`): the store's own cost inside a real run, which two wall times
    on a shared machine are too noisy to show."""
    from ray.tune import Callback

    class Timed(Callback):
        def __init__(self) -> None:
            self.seconds = 0.0

    def forwarder(hook: str) -> Any:
        def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return getattr(callback, hook)(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return forward

    for hook in dir(Callback):
        if hook.startswith("on_") or hook == "setup":
            setattr(Timed, hook, forwarder(hook))
    return Timed()


def ray_run(url: str | None, num_trials: int, reports: int, workdir: Path) -> tuple[float, float]:
    """A Ray Tune run of chatty trials, with the store callback when `url` is set.

    Ray runs with the settings hpo gives it (actor reuse, no per-trial loggers), so that the
    store is the only difference between the two runs.

    Returns:
        The run's wall time, and the time spent in the store callback.
    """
    from ray import tune

    spec = _spec()
    timed = None
    if url is not None:
        store, experiment_id = _new_experiment(url, spec, num_trials)
        timed = _timed(_recorder(store, experiment_id, spec))
    tuner = tune.Tuner(
        tune.with_resources(_chatty_trainable, {"cpu": 1}),
        # The spec's base config too: the callback reads each trial's params from it.
        param_space={
            **spec.base_config(),
            "reports": reports,
            "trial": tune.grid_search(list(range(num_trials))),
        },
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(
            storage_path=str(workdir), verbose=0, callbacks=[timed] if timed else []
        ),
    )
    with environment(RAY_FAST_ENVIRONMENT):
        started = time.perf_counter()
        tuner.fit()
        elapsed = time.perf_counter() - started
    return elapsed, timed.seconds if timed else 0.0


# --- 3. reading a big experiment ------------------------------------------------------------


def fill_hpo(url: str, num_trials: int, batch: int = 50) -> float:
    """Write `num_trials` finished trials of `ITERATIONS` results through `Store.write`.

    Returns the results written per second.
    """
    import numpy as np

    from hpo.search._space import set_path
    from hpo.store import TrialStatus, now

    spec = _spec()
    rng = np.random.default_rng(1)
    store, experiment_id = _new_experiment(url, spec, num_trials)
    base = spec.base_config()
    all_params = _trial_params(spec, rng, num_trials)
    started = time.perf_counter()
    for first in range(0, num_trials, batch):
        trial_rows, result_rows = [], []
        for number in range(first, min(first + batch, num_trials)):
            key = {"experiment_id": experiment_id, "trial_id": f"t{number:05d}"}
            curve = [_epoch_metrics(rng, number, e + 1) for e in range(ITERATIONS)]
            config = copy.deepcopy(base)
            for name, value in all_params[number].items():
                set_path(config, name, value)
            best = {
                name: (min if "loss" in name else max)(m[name] for m in curve) for name in METRICS
            }
            stamp = now()
            trial_rows.append(
                {
                    **key,
                    "number": number,
                    "status": TrialStatus.COMPLETED.value,
                    "params": all_params[number],
                    "config": config,
                    "started_at": stamp,
                    "ended_at": stamp,
                    "iterations": ITERATIONS,
                    "value": curve[-1]["val_accuracy"],
                    "best_value": best["val_accuracy"],
                    "last_result": curve[-1],
                    "final_metrics": curve[-1],
                    "best_metrics": best,
                }
            )
            result_rows += [
                {**key, "iteration": i + 1, "metrics": metrics, "reported_at": stamp}
                for i, metrics in enumerate(curve)
            ]
        store.write(trial_rows, result_rows)
    elapsed = time.perf_counter() - started
    store.close()
    return num_trials * ITERATIONS / elapsed


def fill_optuna(url: str, num_trials: int, batch: int = 500) -> float:
    """The same trials as an Optuna study: params with distributions, value, 50 intermediate
    values (Optuna keeps one number per step, so the study holds less than hpo's store).

    Returns the intermediate values written per second.
    """
    import numpy as np
    import optuna

    from hpo.search._space import optuna_name

    spec = _spec()
    rng = np.random.default_rng(1)
    space = spec.search_space()
    distributions = {optuna_name(key): dist.to_optuna() for key, dist in space.dists.items()}
    study = optuna.create_study(study_name=EXPERIMENT, storage=url, direction="maximize")
    all_params = _trial_params(spec, rng, num_trials)
    started = time.perf_counter()
    for first in range(0, num_trials, batch):
        made = []
        for number in range(first, min(first + batch, num_trials)):
            curve = [_epoch_metrics(rng, number, e + 1)["val_accuracy"] for e in range(ITERATIONS)]
            made.append(
                optuna.trial.create_trial(
                    params={optuna_name(k): v for k, v in all_params[number].items()},
                    distributions=distributions,
                    value=curve[-1],
                    intermediate_values={i + 1: v for i, v in enumerate(curve)},
                )
            )
        study.add_trials(made)
    return num_trials * ITERATIONS / (time.perf_counter() - started)


def read_hpo(url: str, what: str) -> int:
    """Open the store afresh and read one table; returns its number of rows."""
    import hpo

    experiment = hpo.load(EXPERIMENT, store=url)
    table = experiment.trials() if what == "trials" else experiment.history()
    experiment.store.close()
    return len(table)


def read_optuna(url: str, what: str) -> int:
    """Open the study afresh (Optuna caches finished trials per storage object) and read."""
    import optuna
    import pandas as pd

    study = optuna.load_study(study_name=EXPERIMENT, storage=url)
    if what == "trials":
        return len(study.trials_dataframe())
    # Optuna has no history table; this is the shortest way to one from its trials.
    rows = [
        (trial.number, step, value)
        for trial in study.get_trials(deepcopy=False)
        for step, value in trial.intermediate_values.items()
    ]
    return len(pd.DataFrame(rows, columns=["number", "step", "value"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="2,000 trials to read, shorter runs (a few minutes)"
    )
    args = parser.parse_args()
    quiet_libraries()
    num_trials = 2_000 if args.quick else 10_000
    callback_trials, callback_results = (20, 500) if args.quick else (40, 1_000)
    ray_trials, ray_reports = (4, 1_000) if args.quick else (8, 1_000)
    ray_repeats = 1 if args.quick else 3
    read_repeats = 3

    with tempfile.TemporaryDirectory(prefix="hpo-bench-store-") as tmp:
        root = Path(tmp)
        print(f"Machine: {MACHINE}; at the start: {load_average()}")

        # 1. the callback alone
        written = callback_throughput(
            f"sqlite:///{root / 'callback.db'}", callback_trials, callback_results
        )
        us_per_result = 1e6 / written["per_s"]

        # 2. a real run, with and without the store, alternating to spread the noise
        with local_ray():
            bare_times, store_times, in_callback = [], [], []
            for repeat in range(ray_repeats):
                bare_times.append(
                    ray_run(None, ray_trials, ray_reports, root / f"ray-bare-{repeat}")[0]
                )
                elapsed, seconds = ray_run(
                    f"sqlite:///{root / f'ray-{repeat}.db'}",
                    ray_trials,
                    ray_reports,
                    root / f"ray-store-{repeat}",
                )
                store_times.append(elapsed)
                in_callback.append(seconds / elapsed)
        bare, with_store = statistics.median(bare_times), statistics.median(store_times)
        ray_results = ray_trials * ray_reports
        added = with_store / bare - 1
        # The store callback's own time on the driver, as a share of the run with it: what
        # the store adds, measured inside the run rather than as a difference of wall times.
        callback_share = statistics.median(in_callback)

        # 3. a big experiment in both stores
        hpo_url = f"sqlite:///{root / 'hpo.db'}"
        optuna_url = f"sqlite:///{root / 'optuna.db'}"
        hpo_fill = fill_hpo(hpo_url, num_trials)
        optuna_fill = fill_optuna(optuna_url, num_trials)
        reads = {}
        for what in ("trials", "history"):
            reads[what] = (
                timed(lambda what=what: read_hpo(hpo_url, what), read_repeats),
                timed(lambda what=what: read_optuna(optuna_url, what), read_repeats),
            )

    print_table(
        "Writing",
        ["measurement", "value", "goal", "ratio to goal", ""],
        [
            (
                f"StoreRecorder callback, {callback_trials} trials x {callback_results} results",
                f"{written['per_s']:,.0f} results/s ({us_per_result:.0f} us each)",
                "",
                "",
                "",
            ),
            (
                f"Store.write, {num_trials:,} trials x {ITERATIONS} results, 50 trials a batch",
                f"{hpo_fill:,.0f} results/s",
                "",
                "",
                "",
            ),
            (
                "Optuna add_trials, same trials, 500 a batch",
                f"{optuna_fill:,.0f} values/s",
                "",
                f"hpo {hpo_fill / optuna_fill:.1f}x faster",
                "",
            ),
            (
                f"Ray run, {ray_trials} trials x {ray_reports:,} reports, no store "
                f"(median of {ray_repeats})",
                f"{bare:.1f} s ({ray_results / bare:,.0f} results/s)",
                "",
                "",
                "",
            ),
            (
                "  the same with the store callback",
                f"{with_store:.1f} s ({100 * added:+.1f}%, noisy)",
                "< +2%",
                f"{added / 0.02:.2f}",
                verdict(added < 0.02),
            ),
            (
                "  time inside the store callback / the run's wall time",
                f"{100 * callback_share:.1f}%",
                "< 2%",
                f"{callback_share / 0.02:.2f}",
                verdict(callback_share < 0.02),
            ),
        ],
    )
    (hpo_trials, _), (optuna_trials, _) = reads["trials"]
    (hpo_history, rows), (optuna_history, _) = reads["history"]
    print_table(
        f"Reading {num_trials:,} trials x {ITERATIONS} iterations (SQLite, opened afresh, "
        f"median of {read_repeats})",
        ["table", "hpo s", "Optuna s", "Optuna / hpo", "goal", "ratio to goal", ""],
        [
            (
                "trials: .trials() vs trials_dataframe()",
                hpo_trials,
                optuna_trials,
                optuna_trials / hpo_trials,
                "< 1 s, >= 10x",
                f"{hpo_trials:.2f}, {10 / (optuna_trials / hpo_trials):.2f}",
                verdict(hpo_trials < 1 and optuna_trials / hpo_trials >= 10),
            ),
            (
                f"history ({rows:,} rows): .history() vs get_trials()",
                hpo_history,
                optuna_history,
                optuna_history / hpo_history,
                "",
                "",
                "",
            ),
        ],
    )
    print(
        "\nRatio to goal: below 1 meets the goal (for 'trials': seconds over 1 s, then 10x over "
        "Optuna/hpo).\nhpo's results hold 8 metrics per iteration; Optuna's intermediate values "
        "1. Numbers from a shared, noisy machine."
        f" At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
