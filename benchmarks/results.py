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
import statistics
import tempfile
import time
from contextlib import chdir
from dataclasses import dataclass
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
    stdout_discarded,
    verdict,
)

GOAL = 1.10
WORKERS = 2
RATE = 50  # reports per second of work


def plain_loop(config: dict[str, Any]) -> None:
    """The trials' work without any reporting."""
    for _ in range(config["reports"]):
        time.sleep(config["interval"])


def report_loop(config: dict[str, Any], report: Any) -> None:
    """The trials' work, reporting after every 20 ms; each report also says when the trial
    started (wall clock) and how long it has spent inside `report` so far, which splits the
    time above the ideal into start-up and the cost of reporting."""
    started, in_report = time.time(), 0.0
    for step in range(config["reports"]):
        time.sleep(config["interval"])
        before = time.perf_counter()
        report({"score": config["x"] * step, "started": started, "in_report_s": in_report})
        in_report += time.perf_counter() - before


def ray_reporter(config: dict[str, Any]) -> None:
    """A Ray Tune trial."""
    from ray import tune

    report_loop(config, tune.report)


def hpo_reporter(config: dict[str, Any]) -> None:
    """The same trial for hpo's Python API."""
    import hpo

    report_loop(config, hpo.report)


@dataclass
class Run:
    wall_s: float
    startup_s: float  # from the run's start to the later trial's start
    in_report_s: float  # per trial, mean: time inside `report`, up to its last report
    results: int = 0  # results in hpo's store


def from_last_results(wall: float, started_at: float, last: list[dict[str, Any]]) -> Run:
    return Run(
        wall,
        max(r["started"] for r in last) - started_at,
        statistics.mean(r["in_report_s"] for r in last),
    )


def run_ray(workdir: Path, constants: dict[str, Any]) -> Run:
    """Bare Ray Tune at its best (as `_common.run_ray_tune`), keeping the trials' results."""
    from ray import tune

    tuner = tune.Tuner(
        ray_reporter,
        param_space={"x": tune.uniform(0, 1), **constants},
        tune_config=tune.TuneConfig(
            metric="score", mode="max", num_samples=WORKERS, reuse_actors=True
        ),
        run_config=tune.RunConfig(storage_path=str(workdir), verbose=0),
    )
    with environment(RAY_FAST_ENVIRONMENT), stdout_discarded():
        started_at, started = time.time(), time.perf_counter()
        grid = tuner.fit()
        wall = time.perf_counter() - started
    return from_last_results(wall, started_at, [result.metrics for result in grid])


def run_hpo(workdir: Path, constants: dict[str, Any], *, tracking: bool) -> Run:
    """The search through hpo's runner (what `hpo.tune` does, with the spec's tracking set),
    and the number of results the store holds afterwards."""
    from rich.console import Console

    import hpo
    from hpo.runner import execute
    from hpo.spec._spec import load_spec
    from hpo.trainable.user_function import function_name

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
        started_at, started = time.time(), time.perf_counter()
        execute(spec, store_url=store, console=Console(quiet=True), function=hpo_reporter)
        wall = time.perf_counter() - started
    history = hpo.load("results", store=store).history()
    last = history.sort_values("iteration").groupby("trial_id").tail(1)
    run = from_last_results(wall, started_at, last.to_dict("records"))
    run.results = len(history)
    return run


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
    started = time.perf_counter()
    plain_loop(constants)
    runs: dict[str, Run] = {
        "plain Python loop, no reporting (floor)": Run(time.perf_counter() - started, 0.0, 0.0)
    }
    with tempfile.TemporaryDirectory(prefix="hpo-bench-results-") as tmp, local_ray(WORKERS):
        for label, tracking in [
            ("Ray Tune, best settings", None),
            ("hpo: store + TensorBoard (default)", True),
            ("hpo: store only, tracking off", False),
        ]:
            workdir = Path(tmp) / f"run-{len(runs)}"
            workdir.mkdir()
            if tracking is None:
                runs[label] = run_ray(workdir, constants)
            else:
                runs[label] = run_hpo(workdir, constants, tracking=tracking)
                if runs[label].results != WORKERS * reports:
                    raise SystemExit(
                        f"{label}: the store holds {runs[label].results} results, "
                        f"not {WORKERS * reports}"
                    )
            print(f"  {label}: {runs[label].wall_s:.1f} s", flush=True)

    ray_best = runs["Ray Tune, best settings"].wall_s
    rows = []
    for label, run in runs.items():
        over = run.wall_s / ideal
        is_goal = label.startswith("hpo: store + TensorBoard")
        rows.append(
            (
                label,
                run.wall_s,
                f"{over:.3f}x",
                f"{run.wall_s / ray_best:.3f}x",
                run.startup_s,
                run.in_report_s,
                f"<= {GOAL}x ideal" if is_goal else "",
                f"{over / GOAL:.3f}" if is_goal else "",
                verdict(over <= GOAL) if is_goal else "",
            )
        )
    print_table(
        f"{WORKERS} trials x {reports} reports ({RATE}/s of {1000 / RATE:.0f} ms sleep) on "
        f"{WORKERS} workers: ideal {ideal:.0f} s; hpo stored all "
        f"{WORKERS * reports} results in each run",
        [
            "",
            "wall s",
            "/ ideal",
            "/ Ray best",
            "start-up s",
            "in report s",
            "goal",
            "ratio to goal",
            "",
        ],
        rows,
    )
    print(
        "\nRatio to goal: below 1 meets it (wall / ideal over 1.10). 'start-up': from the run's "
        "start to the later trial's start; 'in report': per trial, inside its report calls. "
        "Each row is one run; numbers from a shared, noisy machine. "
        f"At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
