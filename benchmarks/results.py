"""Result-heavy trials: 2 trials reporting 50 times a second, wall time over the ideal.

Each trial runs 20 ms of work (a sleep, as in `utilization.py`: on 2 cores busy work would
compete with the driver for the same cores) and then reports, 1,000 times: 20 s of work per
trial, 2 trials on 2 workers, so the ideal wall time is 20 s. Everything above it is
start-up and what each report costs the trial (a report blocks until Ray's trial runner has
taken it) and the driver (Ray's result processing, the store, TensorBoard). In one run, on
one local Ray with 2 CPUs:

- the same loop in plain Python, without reporting: the floor (sleep's own overshoot);
- bare Ray Tune with its best settings: actor reuse, no per-trial loggers, quiet console;
- hpo through `hpo.tune(fn, ...)`: runner, store callback, progress view and TensorBoard
  tracking (hpo's default), every result written to the store (checked);
- the same with tracking off, to split the store's share from TensorBoard's.

    python benchmarks/results.py            # 1,000 reports over 20 s per trial
    python benchmarks/results.py --quick    # 250 reports over 5 s per trial

Goal (issue 6): hpo at most 1.10x the ideal with the store and tracking on.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import chdir
from pathlib import Path
from typing import Any

from _common import (
    MACHINE,
    load_average,
    local_ray,
    print_table,
    quiet_libraries,
    run_ray_tune,
    verdict,
)

GOAL = 1.10
WORKERS = 2
RATE = 50  # reports per second of work


def plain_loop(config: dict[str, Any]) -> None:
    """The trials' work without any reporting."""
    for _ in range(config["reports"]):
        time.sleep(config["interval"])


def ray_reporter(config: dict[str, Any]) -> None:
    """A Ray Tune trial: 20 ms of work, then a report, `reports` times."""
    from ray import tune

    for step in range(config["reports"]):
        time.sleep(config["interval"])
        tune.report({"score": config["x"] * step, "step": step})


def hpo_reporter(config: dict[str, Any]) -> None:
    """The same trial for hpo's Python API."""
    import hpo

    for step in range(config["reports"]):
        time.sleep(config["interval"])
        hpo.report({"score": config["x"] * step, "step": step})


def run_hpo(workdir: Path, constants: dict[str, Any], *, tracking: bool) -> tuple[float, int]:
    """Wall time of the search through hpo's runner (what `hpo.tune` does, with the spec's
    tracking set), and the number of results the store holds afterwards."""
    from rich.console import Console

    import hpo
    from hpo.custom import function_name
    from hpo.runner import execute
    from hpo.spec import load_spec

    store = f"sqlite:///{workdir / 'hpo.db'}"
    spec = load_spec(
        {
            "name": "results",
            "metric": "score",
            "mode": "max",
            "trainable": function_name(hpo_reporter),
            "config": constants,
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "budget": {"num_samples": WORKERS},
            "tracking": {"tensorboard": tracking},
        }
    )
    with chdir(workdir):
        started = time.perf_counter()
        execute(spec, store_url=store, console=Console(quiet=True), function=hpo_reporter)
        elapsed = time.perf_counter() - started
    return elapsed, len(hpo.load("results", store=store).history())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="250 reports over 5 s per trial")
    args = parser.parse_args()
    quiet_libraries()
    seconds = 5 if args.quick else 20
    reports = seconds * RATE
    constants = {"reports": reports, "interval": 1 / RATE}
    ideal = float(seconds)  # 2 trials on 2 workers at once

    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    walls: dict[str, float] = {}
    started = time.perf_counter()
    plain_loop(constants)
    walls["plain Python loop, no reporting (floor)"] = time.perf_counter() - started
    stored: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-results-") as tmp, local_ray(WORKERS):
        for label, tracking in [
            ("Ray Tune, best settings", None),
            ("hpo: store + TensorBoard (default)", True),
            ("hpo: store only, tracking off", False),
        ]:
            workdir = Path(tmp) / f"run-{len(walls)}"
            workdir.mkdir()
            if tracking is None:
                walls[label] = run_ray_tune(
                    ray_reporter, WORKERS, workdir, fast=True, constants=constants
                )
            else:
                walls[label], stored[label] = run_hpo(workdir, constants, tracking=tracking)
            print(f"  {label}: {walls[label]:.1f} s", flush=True)

    for label, count in stored.items():
        if count != WORKERS * reports:
            raise SystemExit(f"{label}: the store holds {count} results, not {WORKERS * reports}")
    ray_best = walls["Ray Tune, best settings"]
    rows = []
    for label, wall in walls.items():
        over = wall / ideal
        is_goal = label.startswith("hpo: store + TensorBoard")
        rows.append(
            (
                label,
                wall,
                f"{over:.3f}x",
                f"{wall / ray_best:.3f}x",
                f"<= {GOAL}x ideal" if is_goal else "",
                f"{over / GOAL:.3f}" if is_goal else "",
                verdict(over <= GOAL) if is_goal else "",
            )
        )
    print_table(
        f"{WORKERS} trials x {reports} reports ({RATE}/s of {1000 / RATE:.0f} ms sleep) on "
        f"{WORKERS} workers: ideal {ideal:.0f} s; hpo stored all "
        f"{WORKERS * reports} results in each run",
        ["", "wall s", "/ ideal", "/ Ray best", "goal", "ratio to goal", ""],
        rows,
    )
    print(
        "\nRatio to goal: below 1 meets it (wall / ideal over 1.10). Each row is one run; "
        f"numbers from a shared, noisy machine. At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
