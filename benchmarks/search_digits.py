"""The quickstart search three ways, side by side in one run: hpo, bare Ray Tune, bare Optuna.

Issue 6's `real` benchmark. All three train the same torch MLP on digits with the same loop
(`hpo.trainable.loop.fit`), search the same space with Optuna's TPE and prune with successive
halving, on 2 workers, so the wall times compare orchestration, not training code:

- hpo: `hpo.runner.execute` (what `hpo run` calls, minus the CLI's start-up), on the same
  local Ray as bare Ray Tune;
- bare Ray Tune as its docs show it: Tuner, OptunaSearch, ASHA, default settings;
- Optuna alone: 2 processes sharing one study in a journal file.

    python benchmarks/search_digits.py            # 40 trials of up to 20 epochs
    python benchmarks/search_digits.py --quick    # 12 trials of up to 10 epochs

Goals (issue 6): hpo no slower than Optuna alone, and at least 8x faster than bare Ray Tune
with its defaults.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import (
    MACHINE,
    SPEC,
    load_average,
    local_ray,
    print_table,
    quiet_libraries,
    run_optuna,
    stdout_discarded,
    verdict,
)

if TYPE_CHECKING:
    from hpo.spec._spec import Spec


def run_hpo(spec: Spec, workdir: Path) -> tuple[float, float]:
    """hpo's runner on the spec: wall time and the best value."""
    from rich.console import Console

    import hpo
    from hpo.runner import execute

    started = time.perf_counter()
    experiment = execute(
        spec,
        store_url=f"sqlite:///{workdir / 'hpo.db'}",
        results_dir=workdir / "hpo-results",
        console=Console(quiet=True),
    )
    elapsed = time.perf_counter() - started
    best = hpo.load(experiment.name, store=f"sqlite:///{workdir / 'hpo.db'}").best(1)
    return elapsed, float(best[f"best.{spec.metric}"].iloc[0])


def run_ray_defaults(spec: Spec, workdir: Path) -> tuple[float, float]:
    """What a Ray Tune user writes from its docs: Tuner, OptunaSearch, ASHA, default settings."""
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from hpo.trainable.data import load_dataset
    from hpo.trainable.loop import fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dataset = load_dataset(spec.data)

    def trainable(config, dataset):
        import torch

        torch.set_num_threads(1)
        for metrics in fit(config, dataset):
            tune.report(metrics)

    space = spec.search_space()
    sampler = optuna.samplers.TPESampler(
        seed=spec.seed, n_startup_trials=spec.searcher.n_startup_trials
    )
    asha = spec.scheduler
    started = time.perf_counter()
    with stdout_discarded():
        results = tune.Tuner(
            tune.with_parameters(trainable, dataset=dataset),
            param_space=spec.base_config(),
            tune_config=tune.TuneConfig(
                metric=spec.metric,
                mode=spec.mode.value,
                search_alg=OptunaSearch(
                    space.optuna_define_by_run(),
                    metric=spec.metric,
                    mode=spec.mode.value,
                    sampler=sampler,
                ),
                scheduler=ASHAScheduler(
                    max_t=spec.training.epochs,
                    grace_period=asha.grace_period,
                    reduction_factor=asha.reduction_factor,
                ),
                num_samples=spec.num_trials(),
            ),
            run_config=tune.RunConfig(storage_path=str(workdir / "ray"), verbose=0),
        ).fit()
    elapsed = time.perf_counter() - started
    best = results.get_best_result(metric=spec.metric, mode=spec.mode.value, scope="all")
    return elapsed, float(best.metrics_dataframe[spec.metric].max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 trials of up to 10 epochs")
    args = parser.parse_args()
    quiet_libraries()

    from hpo.spec._spec import load_spec

    overrides: dict[str, Any] = (
        {"budget.num_samples": 12, "training.epochs": 10}
        if args.quick
        else {"budget.num_samples": 40}
    )
    spec = load_spec(SPEC, overrides)
    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-digits-") as tmp, local_ray():
        for label, runner in [
            ("hpo", run_hpo),
            ("Ray Tune, defaults", run_ray_defaults),
            ("Optuna alone, 2 processes", lambda s, d: run_optuna(s, d, overrides)),
        ]:
            workdir = Path(tmp) / f"run-{len(results)}"
            workdir.mkdir()
            results[label] = runner(spec, workdir)
            print(f"  {label}: {results[label][0]:.1f} s", flush=True)

    hpo_time = results["hpo"][0]
    goals = {
        "Ray Tune, defaults": (8.0, "hpo >= 8x faster"),
        "Optuna alone, 2 processes": (1.0, "hpo no slower"),
    }
    rows = []
    for label, (elapsed, best) in results.items():
        speedup = elapsed / hpo_time
        goal, text = goals.get(label, (None, ""))
        rows.append(
            (
                label,
                elapsed,
                best,
                f"{speedup:.2f}x",
                text,
                f"{speedup / goal:.2f}" if goal else "",
                verdict(speedup >= goal) if goal else "",
            )
        )
    print_table(
        f"{spec.num_trials()} trials of up to {spec.training.epochs} epochs, TPE + successive "
        "halving, 2 workers, one local Ray with 2 CPUs",
        ["", "wall s", f"best {spec.metric}", "its time / hpo's", "goal", "ratio to goal", ""],
        rows,
    )
    print(
        "\nRatio to goal: 1 or more meets it. One run each; numbers from a shared, noisy machine."
        f" At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
