"""Early stopping pays: random search without pruning against random+ASHA and TPE+ASHA.

Issue 6's `asha` benchmark. A task on which the methods differ (the digits MLP is too easy:
every method reaches 0.98 within seconds): hpo's synthetic classification data, 20,000 rows
of 40 features (10 informative) in 5 classes with 1% of the labels flipped, and an MLP whose
learning rate, width, depth, dropout and weight decay are searched over wide ranges, so that
many configurations learn slowly or not at all. For each seed (which also fixes the
validation split, so the three methods of a seed are judged on the same rows), in one run
on one local Ray with 2 CPUs, all through hpo (`hpo.runner.execute`, what `hpo run` calls),
the same number of trials each:

- random search, every trial trained to the end (FIFO);
- the same random configurations with ASHA (grace period 1 epoch, reduction factor 3);
- TPE (hpo's default: 10 random start-up trials, multivariate) with the same ASHA.

The target of a seed is random search's final best validation accuracy. From the store's
history (every epoch's result with the time the driver recorded it), each method's cost to
reach the target is the epochs trained, by all trials, up to the first result at or above it,
and the wall time from the start of its run to that result (start-up included, as a user
waits for it). A method that never reaches it in a seed is "not reached": its median counts
it as infinite, so the goal is met only where it got there in most seeds.

    python benchmarks/asha.py            # 5 seeds, 24 trials of up to 27 epochs
    python benchmarks/asha.py --quick    # 3 seeds, 10 trials of up to 9 epochs

Goal (issue 6): TPE+ASHA reaches random search's final best with at most 1/3 of its epochs
and at most 1/2 of its wall time, median of 5 seeds.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _common import MACHINE, load_average, local_ray, print_table, quiet_libraries, verdict

EPOCHS_GOAL = 1 / 3
TIME_GOAL = 1 / 2
METRIC = "val_accuracy"

METHODS = {
    "random, no pruning": {"searcher": "random", "scheduler": "fifo"},
    "random + ASHA": {"searcher": "random", "scheduler": "asha"},
    "TPE + ASHA": {"searcher": "optuna", "scheduler": "asha"},
}


def spec_for(method: str, seed: int, trials: int, epochs: int) -> dict[str, Any]:
    """The spec of one method and seed: same data, model, space and trial count for all."""
    scheduler: dict[str, Any] = {"name": METHODS[method]["scheduler"]}
    if scheduler["name"] == "asha":
        scheduler |= {"grace_period": 1, "reduction_factor": 3}
    return {
        "name": f"{METHODS[method]['searcher']}-{scheduler['name']}-seed{seed}",
        "metric": METRIC,
        "mode": "max",
        "seed": seed,
        "data": {
            "name": "classification",
            "n_samples": 20_000,
            "n_features": 40,
            "n_informative": 10,
            "n_classes": 5,
        },
        "model": {"name": "mlp"},
        "training": {"epochs": epochs, "batch_size": 256},
        "space": {
            "optimizer.lr": {"type": "float", "low": 1e-5, "high": 0.3, "log": True},
            "optimizer.weight_decay": {"type": "float", "low": 1e-6, "high": 0.1, "log": True},
            "model.hidden_size": {"type": "int", "low": 8, "high": 256, "log": True},
            "model.num_layers": {"type": "int", "low": 1, "high": 4},
            "model.dropout": {"type": "float", "low": 0.0, "high": 0.6},
        },
        "searcher": {"name": METHODS[method]["searcher"]},
        "scheduler": scheduler,
        "budget": {"num_samples": trials},
    }


@dataclass
class Run:
    """One method on one seed: its whole cost, its best, and its history."""

    epochs: int  # epochs trained by all its trials
    wall_s: float
    startup_s: float  # from the run's start to its first trial's start
    best: float
    history: Any  # hpo's history table, with `elapsed_s` from the run's start


def run_method(spec_data: dict[str, Any], workdir: Path, store: str) -> Run:
    from rich.console import Console

    import hpo
    from hpo.runner import execute
    from hpo.spec._spec import load_spec

    spec = load_spec(spec_data)
    # The store stamps results in UTC without a zone; so does this.
    started_at = datetime.now(timezone.utc).replace(tzinfo=None)
    started = time.perf_counter()
    execute(spec, store_url=store, results_dir=workdir / "hpo-results", console=Console(quiet=True))
    wall = time.perf_counter() - started
    experiment = hpo.load(spec.name, store=store)
    history = experiment.history().sort_values("reported_at")
    history["elapsed_s"] = (history["reported_at"] - started_at).dt.total_seconds()
    history = history.reset_index(drop=True)
    startup = (experiment.trials()["started_at"].min() - started_at).total_seconds()
    return Run(len(history), wall, startup, float(history[METRIC].max()), history)


def cost_to_reach(run: Run, target: float) -> tuple[float, float]:
    """Epochs trained and seconds elapsed up to the first result at or above `target`;
    infinite where the run never got there."""
    reached = run.history.index[run.history[METRIC] >= target]
    if len(reached) == 0:
        return math.inf, math.inf
    first = reached[0]
    return float(first + 1), float(run.history["elapsed_s"].iloc[first])


def shown(value: float, total: float, digits: int = 0) -> str:
    return f"not reached ({total:.{digits}f})" if math.isinf(value) else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, 10 trials of up to 9 epochs")
    args = parser.parse_args()
    quiet_libraries()
    seeds, trials, epochs = (3, 10, 9) if args.quick else (5, 24, 27)

    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    runs: dict[tuple[str, int], Run] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-asha-") as tmp, local_ray():
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
                    f"best {METRIC} {run.best:.4f} ({load_average()})",
                    flush=True,
                )

    # Per seed: each method's cost to reach random search's final best.
    costs: dict[str, list[tuple[float, float, float]]] = {method: [] for method in METHODS}
    rows = []
    for seed in range(seeds):
        target = runs["random, no pruning", seed].best
        for method in METHODS:
            run = runs[method, seed]
            epochs_needed, seconds_needed = cost_to_reach(run, target)
            # The same seconds less the run's start-up (store, data, Ray's workers), which
            # every method pays alike: what the search itself took.
            costs[method].append((epochs_needed, seconds_needed, seconds_needed - run.startup_s))
            rows.append(
                (
                    f"seed {seed}, {method}",
                    f"{target:.4f}",
                    f"{run.best:.4f}",
                    run.epochs,
                    run.wall_s,
                    run.startup_s,
                    shown(epochs_needed, run.epochs),
                    shown(seconds_needed, run.wall_s, 1),
                )
            )
    print_table(
        f"Per seed: {trials} trials of up to {epochs} epochs each method, 2 workers; "
        "target = random search's final best",
        ["", "target", "best", "epochs", "wall s", "start-up s", "epochs to target", "s to target"],
        rows,
    )

    def median(method: str, column: int) -> float:
        return statistics.median(cost[column] for cost in costs[method])

    base = [median("random, no pruning", column) for column in range(3)]
    summary = []
    for method in METHODS:
        epochs_needed, seconds_needed, searching = (median(method, c) for c in range(3))
        reached = sum(not math.isinf(cost[0]) for cost in costs[method])
        epoch_ratio, time_ratio = epochs_needed / base[0], seconds_needed / base[1]
        is_goal = method == "TPE + ASHA"
        summary.append(
            (
                method,
                f"{reached}/{seeds}",
                "not reached" if math.isinf(epochs_needed) else f"{epochs_needed:.0f}",
                "not reached" if math.isinf(seconds_needed) else f"{seconds_needed:.1f}",
                f"{epoch_ratio:.3f}x",
                f"{time_ratio:.3f}x",
                f"{searching / base[2]:.3f}x",
                "epochs <= 1/3, time <= 1/2" if is_goal else "",
                f"{epoch_ratio / EPOCHS_GOAL:.2f}; {time_ratio / TIME_GOAL:.2f}" if is_goal else "",
                verdict(epoch_ratio <= EPOCHS_GOAL and time_ratio <= TIME_GOAL) if is_goal else "",
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
            "less start-up",
            "goal",
            "ratio to goal",
            "",
        ],
        summary,
    )
    print(
        "\nRatio to goal: below 1 meets it (epochs over 1/3 of random's; seconds over 1/2). "
        "Random's own cost is when it first reached its final best. 'less start-up': the "
        "seconds from each run's first trial on, not a goal. One run per method and "
        f"seed; numbers from a shared, noisy machine. At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
