"""The quickstart search three ways, side by side in one run: hpo, bare Ray Tune, bare Optuna.

All three train the same torch MLP on digits with the same loop (`hpo.trainable.loop.fit`),
search the same space with Optuna's TPE and prune with successive halving, so the wall times
compare orchestration, not training code.

    python benchmarks/search_digits.py            # 30 trials of up to 20 epochs
    python benchmarks/search_digits.py --quick    # 12 trials of up to 10 epochs
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

SPEC = Path(__file__).resolve().parent.parent / "search_spaces" / "digits_mlp.yaml"


def run_hpo(spec, workdir: Path) -> tuple[float, float]:
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


def run_ray_defaults(spec, workdir: Path) -> tuple[float, float]:
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


def run_optuna(spec, workdir: Path, jobs: int = 2) -> tuple[float, float]:
    """Optuna alone: TPE with its successive-halving pruner, trials in `jobs` threads."""
    import optuna
    import torch

    from hpo.space import optuna_name, set_path
    from hpo.trainable.data import load_dataset
    from hpo.trainable.loop import fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    dataset = load_dataset(spec.data)
    space = spec.search_space()
    define = space.optuna_define_by_run()
    asha = spec.scheduler

    def objective(trial: optuna.Trial) -> float:
        define(trial)
        config = spec.base_config()
        for key in space:
            set_path(config, key, trial.params[optuna_name(key)])
        best = None
        for metrics in fit(config, dataset):
            value = metrics[spec.metric]
            best = (
                value
                if best is None
                else (max(best, value) if spec.mode.value == "max" else min(best, value))
            )
            trial.report(value, metrics["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study = optuna.create_study(
        direction="maximize" if spec.mode.value == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(
            seed=spec.seed, n_startup_trials=spec.searcher.n_startup_trials
        ),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=asha.grace_period, reduction_factor=int(asha.reduction_factor)
        ),
    )
    started = time.perf_counter()
    study.optimize(objective, n_trials=spec.num_trials(), n_jobs=jobs)
    return time.perf_counter() - started, study.best_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 trials of up to 10 epochs")
    args = parser.parse_args()

    import ray

    from hpo.spec import load_spec

    overrides = {"budget.num_samples": 12, "training.epochs": 10} if args.quick else {}
    spec = load_spec(SPEC, overrides)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, runner in [
            ("hpo", run_hpo),
            ("Ray Tune, defaults", run_ray_defaults),
            ("Optuna alone, 2 threads", run_optuna),
        ]:
            workdir = Path(tmp) / label.split(",")[0].replace(" ", "_")
            workdir.mkdir()
            elapsed, best = runner(spec, workdir)
            rows.append((label, elapsed, best))
    ray.shutdown()

    hpo_time = rows[0][1]
    print(
        f"\n{spec.num_trials()} trials of up to {spec.training.epochs} epochs, 2 CPUs, one Ray for all"
    )
    print(f"{'':<26}{'wall s':>8}{'x hpo':>8}{'best ' + spec.metric:>18}")
    for label, elapsed, best in rows:
        print(f"{label:<26}{elapsed:>8.1f}{elapsed / hpo_time:>8.2f}{best:>18.4f}")


if __name__ == "__main__":
    main()
