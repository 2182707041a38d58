"""Searchers and schedulers side by side: epochs and wall time to reach random search's best.

Issue 17's `schedulers` benchmark, on the task of `asha.py` (hpo's noisy synthetic
classification, where methods differ; see there), at equal budget (the same trials of the
same length for each method), all through hpo (`hpo.runner.execute`, what `hpo run` calls),
in one run on one local Ray with 2 CPUs:

- random search, every trial to the end (FIFO);
- TPE (hpo's default Optuna searcher), FIFO;
- TPE + ASHA (grace 1, reduction factor 3);
- TPE + Hyperband (asynchronous, 3 brackets, grace 1, reduction factor 3);
- TPE + the median stopping rule (grace 1, 3 samples required);
- PBT over random initial configs: every 3 epochs (a checkpoint each), the bottom quarter
  goes on from a top quarter trial's checkpoint with the learning rate and weight decay
  perturbed.

The warm-started TPE row of the issue is left out: warm start is another branch's (`warm`).

The target of a seed is random search's final best validation accuracy; each method's cost
is the epochs trained by all its trials up to its first result at or above it, and the wall
time from its run's start to that result (as `asha.py` measures them). A method that never
gets there counts as infinite in the median.

    python benchmarks/schedulers.py            # 5 seeds, 24 trials of up to 27 epochs
    python benchmarks/schedulers.py --quick    # 3 seeds, 10 trials of up to 9 epochs
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

from _common import MACHINE, load_average, local_ray, print_table, quiet_libraries
from asha import Run, cost_to_reach, run_method, shown
from asha import spec_for as asha_spec

RANDOM = "random"
# method -> (searcher, scheduler section builder of the trial length)
METHODS: dict[str, tuple[str, Any]] = {
    RANDOM: ("random", lambda epochs: {"name": "fifo"}),
    "TPE": ("optuna", lambda epochs: {"name": "fifo"}),
    "TPE + ASHA": (
        "optuna",
        lambda epochs: {"name": "asha", "grace_period": 1, "reduction_factor": 3},
    ),
    "TPE + Hyperband": (
        "optuna",
        lambda epochs: {
            "name": "hyperband",
            "grace_period": 1,
            "reduction_factor": 3,
            "brackets": 3,
        },
    ),
    "TPE + median": (
        "optuna",
        lambda epochs: {"name": "median", "grace_period": 1, "min_samples_required": 3},
    ),
    "PBT": (
        "random",
        lambda epochs: {"name": "pbt", "perturbation_interval": 3, "quantile_fraction": 0.25},
    ),
}


def spec_for(method: str, seed: int, trials: int, epochs: int) -> dict[str, Any]:
    """asha.py's spec (same data, model, space and trials) with this method's searcher and
    scheduler; PBT also saves a checkpoint at each perturbation."""
    searcher, scheduler = METHODS[method]
    spec = asha_spec("random, no pruning", seed, trials, epochs)
    section = scheduler(epochs)
    spec["searcher"] = {"name": searcher}
    spec["scheduler"] = section
    slug = method.lower().replace(" + ", "-").replace(" ", "-")
    spec["name"] = f"{slug}-seed{seed}"
    if section["name"] == "pbt":
        spec["checkpoint"] = {"every": section["perturbation_interval"]}
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, 10 trials of up to 9 epochs")
    parser.add_argument("--seeds", type=int, help="seeds to run (default: 5, --quick 3)")
    args = parser.parse_args()
    quiet_libraries()
    seeds, trials, epochs = (3, 10, 9) if args.quick else (5, 24, 27)
    seeds = args.seeds or seeds

    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    runs: dict[tuple[str, int], Run] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-schedulers-") as tmp, local_ray():
        store = f"sqlite:///{Path(tmp) / 'hpo.db'}"
        for seed in range(seeds):
            for method in METHODS:
                workdir = Path(tmp) / f"run-{len(runs)}"
                workdir.mkdir()
                run = runs[method, seed] = run_method(
                    spec_for(method, seed, trials, epochs), workdir, store
                )
                print(
                    f"  seed {seed}, {method}: {run.epochs} epochs in {run.wall_s:.1f} s, "
                    f"best {run.best:.4f} ({load_average()})",
                    flush=True,
                )

    costs: dict[str, list[tuple[float, float]]] = {method: [] for method in METHODS}
    rows = []
    for seed in range(seeds):
        target = runs[RANDOM, seed].best
        for method in METHODS:
            run = runs[method, seed]
            epochs_needed, seconds_needed = cost_to_reach(run, target)
            costs[method].append((epochs_needed, seconds_needed))
            rows.append(
                (
                    f"seed {seed}, {method}",
                    f"{target:.4f}",
                    f"{run.best:.4f}",
                    run.epochs,
                    f"{run.wall_s:.1f}",
                    shown(epochs_needed, run.epochs),
                    shown(seconds_needed, run.wall_s, 1),
                )
            )
    print_table(
        f"Per seed: {trials} trials of up to {epochs} epochs each method, 2 workers; "
        "target = random search's final best",
        ["", "target", "best", "epochs", "wall s", "epochs to target", "s to target"],
        rows,
    )

    def median(method: str, column: int) -> float:
        return statistics.median(cost[column] for cost in costs[method])

    base = (median(RANDOM, 0), median(RANDOM, 1))
    summary = []
    for method in METHODS:
        epochs_needed, seconds_needed = median(method, 0), median(method, 1)
        reached = sum(not math.isinf(cost[0]) for cost in costs[method])
        summary.append(
            (
                method,
                f"{reached}/{seeds}",
                "not reached" if math.isinf(epochs_needed) else f"{epochs_needed:.0f}",
                "not reached" if math.isinf(seconds_needed) else f"{seconds_needed:.1f}",
                f"{epochs_needed / base[0]:.3f}x",
                f"{seconds_needed / base[1]:.3f}x",
            )
        )
    print_table(
        f"Medians over {seeds} seeds of the cost to reach random search's final best",
        ["", "reached", "epochs", "s", "epochs / random's", "s / random's"],
        summary,
    )
    print(
        "\nRandom's own cost is when it first reached its final best. One run per method and "
        f"seed; numbers from a shared, noisy machine. At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
