"""Scaling: the same trials through hpo on 1 worker and on 2 workers, and the speed-up.

Every trial does a fixed amount of work and reports once; `hpo.tune` runs them on one local Ray
with 2 CPUs, first with `resources={"cpu": 2}` (one trial at a time), then `{"cpu": 1}` (two).
The worker count is set through the resources (and `max_concurrent` to the same number):
`max_concurrent` alone was ignored by hpo's random searcher when this was written (fixed since).
The work is a sleep by default (as in `utilization.py`: what is measured is how well hpo keeps
the workers busy); `--busy` makes it a second of CPU time instead, which on a 2-core machine
also competes with the driver's own bookkeeping for the cores.

    python benchmarks/scaling.py            # 100 trials of 1 s (ideal 100 s, then 50 s)
    python benchmarks/scaling.py --quick    # 30 trials of 0.5 s (ideal 15 s, then 7.5 s)

Goal (issue 6): at least 1.9x faster on 2 workers than on 1.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import MACHINE, load_average, local_ray, print_table, quiet_libraries, run_hpo_tune
from _common import verdict as verdict_of
from utilization import hpo_sleeper

GOAL = 1.9


def hpo_busy(config: dict[str, Any]) -> None:
    """A trial of fixed CPU work: spin until this process has used `seconds` of CPU time."""
    import hpo

    until = time.process_time() + config["seconds"]
    while time.process_time() < until:
        pass
    hpo.report({"score": config["x"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 trials of 0.5 s")
    parser.add_argument("--busy", action="store_true", help="CPU work instead of a sleep")
    args = parser.parse_args()
    quiet_libraries()
    trials, seconds = (30, 0.5) if args.quick else (100, 1.0)
    train_fn = hpo_busy if args.busy else hpo_sleeper
    work = "CPU work" if args.busy else "sleep"

    # The first `hpo.tune` of a process imports hpo's runner (about a second); do it before
    # timing, so that it does not count against 1 worker only.
    import hpo.runner  # noqa: F401

    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    walls: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-scaling-") as tmp, local_ray(2):
        for workers in (1, 2):
            workdir = Path(tmp) / f"workers-{workers}"
            workdir.mkdir()
            walls[workers] = run_hpo_tune(
                train_fn,
                trials,
                workdir,
                constants={"seconds": seconds},
                budget__max_concurrent=workers,
                resources={"cpu": 2 / workers},
            )
            print(f"  {workers} worker(s): {trials} trials in {walls[workers]:.1f} s", flush=True)

    speedup = walls[1] / walls[2]
    rows = [
        (
            f"hpo.tune(fn), {workers} worker(s)",
            walls[workers],
            trials * seconds / workers,
            f"{walls[workers] / (trials * seconds / workers):.3f}x",
            f"{walls[1] / walls[workers]:.2f}x",
            f">= {GOAL}x" if workers == 2 else "",
            f"{speedup / GOAL:.3f}" if workers == 2 else "",
            verdict_of(speedup >= GOAL) if workers == 2 else "",
        )
        for workers in (1, 2)
    ]
    print_table(
        f"{trials} trials of {seconds:g} s ({work}) on 1 and 2 workers (local Ray, 2 CPUs)",
        ["", "wall s", "ideal s", "/ ideal", "speed-up", "goal", "ratio to goal", ""],
        rows,
    )
    print(
        "\nRatio to goal: 1 or more meets it. Each row is one run; numbers from a shared, "
        f"noisy machine. At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
