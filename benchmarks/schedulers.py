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
  perturbed;
- TPE + ASHA warm-started (`warm_start: {from: [earlier], best: 3}`) from an earlier
  experiment of 24 trials on the same task: the same data and space, TPE + ASHA with
  another seed (so another validation split and other configs), run first in the same
  store. Its epochs and time are not counted: the row's cost is its own trials'. It has
  the same scheduler as the cold TPE + ASHA row, so the two differ only in the warm start.

The target of a seed is random search's final best validation accuracy; each method's cost
is the epochs trained by all its trials up to its first result at or above it, and the wall
time from its run's start to that result (as `asha.py` measures them). A method that never
gets there counts as infinite in the median.

Goal (issue 17): the warm-started TPE reaches random search's final best in at most half the
epochs of a cold TPE + ASHA, medians over the seeds.

    python benchmarks/schedulers.py            # 5 seeds, 24 trials of up to 27 epochs
    python benchmarks/schedulers.py --quick    # 3 seeds, 10 trials of up to 9 epochs
    python benchmarks/schedulers.py --quick --seeds 5   # the issue's 5 seeds, quick sizes

The earlier experiment of the warm row has 24 trials in both settings (of the setting's
epochs), as the issue says.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

from _common import MACHINE, load_average, local_ray, print_table, quiet_libraries, verdict
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

COLD = "TPE + ASHA"
WARM = "TPE + ASHA, warm-started"
# The earlier experiment: 24 trials, whatever the size of the compared runs.
EARLIER_TRIALS = 24
# Its K best configs are the warm run's first trials (the rest of what it learnt is told).
WARM_BEST = 3
# Another seed than any compared run's (0 to seeds - 1): another split and other configs.
EARLIER_SEED_OFFSET = 100
WARM_GOAL = 1 / 2  # the warm row's median epochs over the cold TPE + ASHA's
ROWS = [*METHODS, WARM]


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


def earlier_spec(seed: int, epochs: int) -> dict[str, Any]:
    """The earlier experiment that seed `seed`'s warm row starts from: TPE + ASHA on the same
    task, 24 trials, with another seed."""
    spec = spec_for(COLD, seed + EARLIER_SEED_OFFSET, EARLIER_TRIALS, epochs)
    spec["name"] = f"earlier-tpe-asha-for-seed{seed}"
    return spec


def warm_spec(seed: int, trials: int, epochs: int) -> dict[str, Any]:
    """The cold TPE + ASHA spec of `seed`, warm-started from its earlier experiment."""
    spec = spec_for(COLD, seed, trials, epochs)
    spec["name"] = f"tpe-asha-warm-seed{seed}"
    spec["warm_start"] = {"from": [earlier_spec(seed, epochs)["name"]], "best": WARM_BEST}
    return spec


def warm_notes(spec_data: dict[str, Any], store: str) -> list[str]:
    """What the warm start tells the searcher and enqueues ("told 24 of 24 trials of ...")."""
    from hpo.spec import gather
    from hpo.spec._spec import load_spec

    return gather(load_spec(spec_data), store).notes


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
            # The earlier experiment, then the run that starts from it (same store).
            workdir = Path(tmp) / f"earlier-{seed}"
            workdir.mkdir()
            earlier = run_method(earlier_spec(seed, epochs), workdir, store)
            print(
                f"  seed {seed}, earlier experiment ({EARLIER_TRIALS} trials, TPE + ASHA, seed "
                f"{seed + EARLIER_SEED_OFFSET}; not counted): {earlier.epochs} epochs in "
                f"{earlier.wall_s:.1f} s, best {earlier.best:.4f}",
                flush=True,
            )
            spec = warm_spec(seed, trials, epochs)
            print(f"  seed {seed}, {WARM}: " + "; ".join(warm_notes(spec, store)), flush=True)
            workdir = Path(tmp) / f"run-{len(runs)}"
            workdir.mkdir()
            run = runs[WARM, seed] = run_method(spec, workdir, store)
            print(
                f"  seed {seed}, {WARM}: {run.epochs} epochs in {run.wall_s:.1f} s, "
                f"best {run.best:.4f} ({load_average()})",
                flush=True,
            )

    costs: dict[str, list[tuple[float, float]]] = {method: [] for method in ROWS}
    rows = []
    for seed in range(seeds):
        target = runs[RANDOM, seed].best
        for method in ROWS:
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
    cold = median(COLD, 0)
    summary = []
    for method in ROWS:
        epochs_needed, seconds_needed = median(method, 0), median(method, 1)
        reached = sum(not math.isinf(cost[0]) for cost in costs[method])
        goal: tuple[str, str, str] = ("", "", "")
        if method == WARM:
            # inf / inf (neither reached) is no evidence either way: a missed goal.
            ratio = epochs_needed / cold if math.isfinite(epochs_needed) else math.inf
            goal = (
                f"epochs <= 1/2 of {COLD}'s",
                f"{ratio / WARM_GOAL:.2f}",
                verdict(ratio <= WARM_GOAL),
            )
        summary.append(
            (
                method,
                f"{reached}/{seeds}",
                "not reached" if math.isinf(epochs_needed) else f"{epochs_needed:.0f}",
                "not reached" if math.isinf(seconds_needed) else f"{seconds_needed:.1f}",
                f"{epochs_needed / base[0]:.3f}x",
                f"{seconds_needed / base[1]:.3f}x",
                *goal,
            )
        )
    print_table(
        f"Medians over {seeds} seeds of the cost to reach random search's final best",
        [
            "",
            "reached",
            "epochs",
            "s",
            "epochs / random's",
            "s / random's",
            "goal",
            "ratio to goal",
            "",
        ],
        summary,
    )
    print(
        "\nRatio to goal: below 1 meets it (the warm row's median epochs over half the cold "
        f"{COLD}'s). The warm row's earlier experiment is not counted. Random's own cost is "
        "when it first reached its final best. One run per method and seed; numbers from a "
        f"shared, noisy machine. At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
