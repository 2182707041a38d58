"""Worker utilization: trials of fixed work on 2 workers, wall time over the ideal.

Each trial sleeps for a fixed time and reports once. A sleep, not busy work: on a 2-core
machine, busy work on both workers would compete with the driver (Ray's and hpo's
bookkeeping) for the same cores, and the benchmark would measure that contention rather than
how well the workers are kept busy. The ideal is the total work divided by the workers;
everything above it is start-up, gaps between trials and the driver's bookkeeping. In one
run, on one local Ray with 2 CPUs (so 2 trials at a time):

- bare Ray Tune with its best settings: actor reuse, no per-trial loggers, quiet console;
- hpo through `hpo.tune(fn, ...)`: runner, store callback and progress view.

    python benchmarks/utilization.py            # 200 trials of 1 s (ideal 100 s)
    python benchmarks/utilization.py --quick    # 40 trials of 0.5 s (ideal 10 s)

Goal (issue 6): hpo at most 1.05x the ideal, and no slower than bare Ray Tune at its best.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    MACHINE,
    load_average,
    local_ray,
    print_table,
    quiet_libraries,
    run_hpo_tune,
    run_ray_tune,
    verdict,
)

GOAL = 1.05
WORKERS = 2


def ray_sleeper(config: dict[str, Any]) -> None:
    """A Ray Tune trial of fixed work: sleep, then report once."""
    from ray import tune

    time.sleep(config["seconds"])
    tune.report({"score": config["x"]})


def hpo_sleeper(config: dict[str, Any]) -> None:
    """The same trial for hpo's Python API."""
    import hpo

    time.sleep(config["seconds"])
    hpo.report({"score": config["x"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 trials of 0.5 s (ideal 10 s)")
    args = parser.parse_args()
    quiet_libraries()
    trials, seconds = (40, 0.5) if args.quick else (200, 1.0)
    ideal = trials * seconds / WORKERS
    constants = {"seconds": seconds}

    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-utilization-") as tmp, local_ray(WORKERS):
        for label, run in [
            (
                "Ray Tune, best settings",
                lambda d: run_ray_tune(ray_sleeper, trials, d, fast=True, constants=constants),
            ),
            (
                "hpo.tune(fn): runner + store + progress",
                lambda d: run_hpo_tune(hpo_sleeper, trials, d, constants=constants),
            ),
        ]:
            workdir = Path(tmp) / f"run-{len(walls)}"
            workdir.mkdir()
            walls[label] = run(workdir)
            print(f"  {label}: {trials} trials in {walls[label]:.1f} s", flush=True)

    ray_best = walls["Ray Tune, best settings"]
    rows = []
    for label, wall in walls.items():
        over = wall / ideal
        is_hpo = label.startswith("hpo")
        rows.append(
            (
                label,
                wall,
                f"{over:.3f}x",
                f"{wall / ray_best:.3f}x",
                f"<= {GOAL}x ideal, <= Ray best" if is_hpo else "",
                f"{over / GOAL:.3f}; {wall / ray_best:.3f}" if is_hpo else "",
                verdict(over <= GOAL and wall <= ray_best) if is_hpo else "",
            )
        )
    print_table(
        f"{trials} trials of {seconds:g} s (sleep) on {WORKERS} workers: ideal {ideal:.1f} s",
        ["", "wall s", "/ ideal", "/ Ray best", "goal", "ratio to goal", ""],
        rows,
    )
    print(
        "\nRatio to goal: below 1 meets it (wall / ideal over 1.05; wall / Ray's best). "
        "Each row is one run; numbers from a shared, noisy machine."
        f" At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
