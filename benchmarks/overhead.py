"""Orchestration overhead: trivial trials per second through hpo and through bare Ray Tune.

Every trial reports one number and ends, so the wall time is all bookkeeping: starting
trials, passing results, the searcher, loggers, the store. In one run, on one local Ray:

- bare Ray Tune as its docs show it (`Tuner(fn, param_space=..., num_samples=N)`), defaults;
- bare Ray Tune at its fastest: actor reuse, no per-trial loggers, quiet console;
- hpo through `hpo.tune(fn, ...)`: hpo's runner, store callback and progress view, with a
  user function as the trainable (so the trial itself is as trivial as Ray's);
- hpo through a spec with its own torch trainable: 1 epoch of a tiny MLP on 60 rows, which
  adds the trainable's own start (torch, seeding, a model) to each trial.

Then, as whole fresh processes started by this script one after the other (issue 15: what a
user waits for, Ray's start and shutdown and every import included), 30 trivial trials:

- `hpo.tune(fn, ...)` in a `python -c` script, which starts its own local Ray;
- bare Ray Tune with its defaults in a `python -c` script (`Tuner(fn, ...).fit()`, which starts
  Ray itself), its results in the run's folder instead of `~/ray_results`.

    python benchmarks/overhead.py            # 500 trials each (Ray defaults: 60)
    python benchmarks/overhead.py --quick    # 150 trials each (Ray defaults: 20)

Goals: hpo at least 15x the trials per second of bare Ray Tune with its defaults (issue 6);
as whole processes, hpo at least 8x faster than bare Ray Tune with its defaults (issue 15).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    MACHINE,
    Process,
    load_average,
    local_ray,
    print_table,
    quiet_libraries,
    run_hpo_tune,
    run_ray_tune,
    verdict,
)

GOAL = 15.0
WHOLE_PROCESS_GOAL = 8.0
WHOLE_PROCESS_TRIALS = 30

# The two whole-process scripts, as a user would write them (`{trials}` filled in).
HPO_SCRIPT = """
import hpo

def trivial(config):
    hpo.report({{"score": config["x"]}})

hpo.tune(
    trivial,
    space={{"x": {{"type": "float", "low": 0.0, "high": 1.0}}}},
    metric="score",
    mode="max",
    budget__num_samples={trials},
    store="sqlite:///hpo.db",
)
"""
RAY_SCRIPT = """
from ray import tune

def trivial(config):
    tune.report({{"score": config["x"]}})

tune.Tuner(
    trivial,
    param_space={{"x": tune.uniform(0, 1)}},
    tune_config=tune.TuneConfig(metric="score", mode="max", num_samples={trials}),
    run_config=tune.RunConfig(storage_path={storage!r}),
).fit()
"""


def ray_trivial(config: dict[str, Any]) -> None:
    """A Ray Tune trial that reports once."""
    from ray import tune

    tune.report({"score": config["x"]})


def hpo_trivial(config: dict[str, Any]) -> None:
    """The same trial for hpo's Python API."""
    import hpo

    hpo.report({"score": config["x"]})


def run_hpo_spec(num_trials: int, workdir: Path) -> float:
    """Wall time of a spec run with hpo's own trainable: 1 epoch of a tiny MLP per trial."""
    from rich.console import Console

    from hpo.runner import execute
    from hpo.spec._spec import load_spec

    spec = load_spec(
        {
            "name": "overhead",
            "metric": "val_accuracy",
            "mode": "max",
            "data": {"name": "classification", "n_samples": 60, "n_features": 4},
            "model": {"name": "mlp", "hidden_size": 8, "num_layers": 1},
            "training": {"epochs": 1, "batch_size": 64},
            "space": {"optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
            "searcher": {"name": "random"},
            "budget": {"num_samples": num_trials},
        }
    )
    started = time.perf_counter()
    execute(
        spec,
        store_url=f"sqlite:///{workdir / 'hpo.db'}",
        results_dir=workdir / "hpo-results",
        console=Console(quiet=True),
    )
    return time.perf_counter() - started


def whole_processes(root: Path, trials: int) -> dict[str, float]:
    """Wall time of each script as a fresh process, from its start to its exit."""
    walls = {}
    for label, script in [
        ("hpo.tune(fn), whole process", HPO_SCRIPT),
        ("Ray Tune, defaults, whole process", RAY_SCRIPT),
    ]:
        workdir = root / f"process-{len(walls)}"
        workdir.mkdir()
        code = script.format(trials=trials, storage=str(workdir / "ray_results"))
        run = Process(label, [sys.executable, "-c", code], workdir)
        run.finish(run.start())
        walls[label] = run.ended - run.started
        print(f"  {label}: {trials} trials in {walls[label]:.1f} s", flush=True)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="150 trials each (a few minutes)")
    args = parser.parse_args()
    quiet_libraries()
    many, few = (150, 20) if args.quick else (500, 60)

    runs: list[tuple[str, int, Callable[[int, Path], float]]] = [
        ("Ray Tune, defaults", few, lambda n, d: run_ray_tune(ray_trivial, n, d, fast=False)),
        ("Ray Tune, best settings", many, lambda n, d: run_ray_tune(ray_trivial, n, d, fast=True)),
        (
            "hpo.tune(fn): runner + store + progress",
            many,
            lambda n, d: run_hpo_tune(hpo_trivial, n, d),
        ),
        ("hpo spec, own trainable (1 epoch, 60 rows)", many, run_hpo_spec),
    ]
    rates: dict[str, float] = {}
    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="hpo-bench-overhead-") as tmp, local_ray():
        for label, count, runner in runs:
            workdir = Path(tmp) / f"run-{len(rates)}"
            workdir.mkdir()
            elapsed = runner(count, workdir)
            rates[label] = count / elapsed
            print(f"  {label}: {count} trials in {elapsed:.1f} s", flush=True)
        local_ray_load = load_average()
    # After the in-process runs' Ray is shut down: each process starts its own.
    with tempfile.TemporaryDirectory(prefix="hpo-bench-overhead-processes-") as tmp:
        walls = whole_processes(Path(tmp), WHOLE_PROCESS_TRIALS)

    baseline = rates["Ray Tune, defaults"]
    rows = []
    for label, count, _ in runs:
        ratio = rates[label] / baseline
        is_hpo = label.startswith("hpo")
        rows.append(
            (
                label,
                count,
                rates[label],
                f"{ratio:.1f}x",
                f">= {GOAL:.0f}x" if is_hpo else "",
                f"{ratio / GOAL:.2f}" if is_hpo else "",
                verdict(ratio >= GOAL) if is_hpo else "",
            )
        )
    print_table(
        "Trivial trials (one report each), 2 at a time on one local Ray with 2 CPUs",
        ["", "trials", "trials/s", "x Ray defaults", "goal", "ratio to goal", ""],
        rows,
    )
    hpo_wall = walls["hpo.tune(fn), whole process"]
    ray_wall = walls["Ray Tune, defaults, whole process"]
    faster = ray_wall / hpo_wall
    print_table(
        f"{WHOLE_PROCESS_TRIALS} trivial trials, each side a fresh process (start to exit, "
        "Ray's start and shutdown included)",
        ["", "wall s", "Ray defaults / this", "goal", "ratio to goal", ""],
        [
            ("Ray Tune, defaults, whole process", ray_wall, "1.0x", "", "", ""),
            (
                "hpo.tune(fn), whole process",
                hpo_wall,
                f"{faster:.1f}x",
                f">= {WHOLE_PROCESS_GOAL:.0f}x faster",
                f"{faster / WHOLE_PROCESS_GOAL:.2f}",
                verdict(faster >= WHOLE_PROCESS_GOAL),
            ),
        ],
    )
    print(
        "\nRatio to goal: 1 or more meets it. Each row is one run; numbers from a shared, "
        f"noisy machine. After the in-process runs: {local_ray_load}; "
        f"at the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
