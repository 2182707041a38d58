"""Does the range `hpo lr-find` proposes make the search better than a wide default range?

Issue 21's `lr_find` benchmark. On the digits MLP (`search_spaces/digits_mlp.yaml`) and the
digits CNN (`search_spaces/digits_cnn.yaml`), for each seed, TPE+ASHA (each spec's own
searcher and scheduler) searches the spec's space twice, the same number of trials each,
through hpo (`hpo.runner.execute`, what `hpo run` calls), on one local Ray with 2 CPUs:

- "wide": `optimizer.lr` over `[1e-5, 1]`, what a user who knows no better searches;
- "lr-find": `optimizer.lr` over the range `hpo lr-find SPEC --json` proposes, run as a
  whole process (a fresh Python, its imports and data included), whose wall time is added
  to this arm's.

The other searched keys are the spec's. The target of a seed is the wide range's final best
validation accuracy. From the store's history (every epoch's result with the time the
driver recorded it), each arm's cost to reach the target is the trials started up to the
first result at or above it, and the wall time from the start of its run to that result
(lr-find's own time included for its arm). An arm that never gets there in a seed is "not
reached", infinite in the medians. Beside it, not a goal: the trials of each arm whose best
stayed below 0.9, the budget spent on rates that do not learn.

    python benchmarks/lr_find.py            # 5 seeds; each spec's trials and epochs
    python benchmarks/lr_find.py --quick    # 2 seeds; 12 MLP / 8 CNN trials, fewer epochs

Goal (issue 21): the lr-find range reaches the wide range's best with at most half of its
trials and half of its wall time, median of the seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from _common import MACHINE, load_average, local_ray, print_table, quiet_libraries, verdict

GOAL = 1 / 2
METRIC = "val_accuracy"
# A trial whose best stays below this spent its budget on a rate that does not learn digits.
WASTED_BELOW = 0.9
ROOT = Path(__file__).resolve().parent.parent
WIDE = {"type": "float", "low": 1e-5, "high": 1.0, "log": True}

# Spec, then (trials, epochs) of a full and of a quick run.
MODELS = {
    "digits MLP": ("digits_mlp.yaml", (30, 20), (12, 10)),
    "digits CNN": ("digits_cnn.yaml", (16, 20), (8, 8)),
}


@dataclass
class Run:
    """One arm on one seed: its cost, its best, and its history."""

    lr_range: dict[str, Any]
    extra_s: float  # lr-find's own wall time (0 for the wide range)
    wall_s: float
    best: float
    history: Any  # hpo's history table, `elapsed_s` from the run's start, `trial` its number


def lr_find(spec_path: Path, seed: int) -> tuple[dict[str, Any], float]:
    """`hpo lr-find SPEC --json` as a user runs it: its proposed range and its wall time."""
    command = [sys.executable, "-m", "hpo", "lr-find", str(spec_path), "--set", f"seed={seed}"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, env=env, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"hpo lr-find exited {done.returncode}:\n{done.stderr[-3000:]}")
    found = json.loads(done.stdout)["range"]["optimizer.lr"]
    return found, elapsed


def spec_for(file: str, seed: int, lr_range: dict[str, Any], trials: int, epochs: int, arm: str):
    data = yaml.safe_load((ROOT / "search_spaces" / file).read_text())
    data["name"] = f"{data['name']}-{arm}-seed{seed}"
    data["seed"] = seed
    data["space"]["optimizer.lr"] = lr_range
    data["budget"] = {**data.get("budget", {}), "num_samples": trials}
    data["training"]["epochs"] = epochs
    data.pop("checkpoint", None)  # not what is measured
    return data


def run_arm(spec_data: dict[str, Any], workdir: Path, store: str, extra_s: float) -> Run:
    from rich.console import Console

    import hpo
    from hpo.runner import execute
    from hpo.spec._spec import load_spec

    spec = load_spec(spec_data)
    started_at = datetime.now(timezone.utc).replace(tzinfo=None)  # the store's naive UTC
    started = time.perf_counter()
    execute(spec, store_url=store, results_dir=workdir / "hpo-results", console=Console(quiet=True))
    wall = time.perf_counter() - started
    experiment = hpo.load(spec.name, store=store)
    numbers = dict(zip(*(experiment.trials()[c] for c in ("trial_id", "number")), strict=True))
    history = experiment.history().sort_values("reported_at").reset_index(drop=True)
    history["elapsed_s"] = (history["reported_at"] - started_at).dt.total_seconds()
    history["trial"] = history["trial_id"].map(numbers)
    return Run(
        spec_data["space"]["optimizer.lr"], extra_s, wall, float(history[METRIC].max()), history
    )


def cost_to_reach(run: Run, target: float) -> tuple[float, float]:
    """Trials started up to the first result at or above `target`, and the seconds to it
    (lr-find's own included); infinite where the run never got there."""
    reached = run.history.index[run.history[METRIC] >= target]
    if len(reached) == 0:
        return math.inf, math.inf
    first = run.history.loc[reached[0]]
    return float(first["trial"] + 1), float(first["elapsed_s"] + run.extra_s)


def wasted(run: Run) -> int:
    """The trials whose best result stayed below `WASTED_BELOW`."""
    return int((run.history.groupby("trial")[METRIC].max() < WASTED_BELOW).sum())


def shown(value: float, digits: int = 0) -> str:
    return "not reached" if math.isinf(value) else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, fewer trials and epochs")
    args = parser.parse_args()
    quiet_libraries()
    seeds = 2 if args.quick else 5

    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    runs: dict[tuple[str, str, int], Run] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-lrfind-") as tmp, local_ray():
        store = f"sqlite:///{Path(tmp) / 'hpo.db'}"
        for model, (file, full, quick) in MODELS.items():
            trials, epochs = quick if args.quick else full
            for seed in range(seeds):
                found, found_s = lr_find(ROOT / "search_spaces" / file, seed)
                print(
                    f"  {model}, seed {seed}: hpo lr-find proposes [{found['low']:g}, "
                    f"{found['high']:g}] in {found_s:.1f} s ({load_average()})",
                    flush=True,
                )
                for arm, lr_range, extra in (("wide", WIDE, 0.0), ("lr-find", found, found_s)):
                    workdir = Path(tmp) / f"run-{len(runs)}"
                    workdir.mkdir()
                    data = spec_for(file, seed, lr_range, trials, epochs, arm)
                    run = runs[model, arm, seed] = run_arm(data, workdir, store, extra)
                    print(
                        f"  {model}, seed {seed}, {arm}: {len(run.history)} epochs in "
                        f"{run.wall_s:.1f} s, best {METRIC} {run.best:.4f} ({load_average()})",
                        flush=True,
                    )

    rows, summary = [], []
    for model, (_, full, quick) in MODELS.items():
        trials, epochs = quick if args.quick else full
        costs: dict[str, list[tuple[float, float]]] = {"wide": [], "lr-find": []}
        for seed in range(seeds):
            target = runs[model, "wide", seed].best
            for arm in costs:
                run = runs[model, arm, seed]
                cost = cost_to_reach(run, target)
                costs[arm].append(cost)
                rows.append(
                    (
                        f"{model}, seed {seed}, {arm}",
                        f"[{run.lr_range['low']:g}, {run.lr_range['high']:g}]",
                        f"{target:.4f}",
                        f"{run.best:.4f}",
                        run.wall_s + run.extra_s,
                        shown(cost[0]),
                        shown(cost[1], 1),
                        wasted(run),
                    )
                )
        medians = {
            arm: [statistics.median(c[i] for c in costs[arm]) for i in (0, 1)] for arm in costs
        }
        trial_ratio = medians["lr-find"][0] / medians["wide"][0]
        time_ratio = medians["lr-find"][1] / medians["wide"][1]
        reached = sum(not math.isinf(c[0]) for c in costs["lr-find"])
        waste = {
            arm: statistics.median(wasted(runs[model, arm, seed]) for seed in range(seeds))
            for arm in costs
        }
        summary.append(
            (
                f"{model} ({trials} trials, <= {epochs} epochs)",
                shown(medians["wide"][0]),
                shown(medians["lr-find"][0]),
                f"{trial_ratio:.2f}x",
                shown(medians["wide"][1], 1),
                shown(medians["lr-find"][1], 1),
                f"{time_ratio:.2f}x",
                f"{reached}/{seeds}",
                f"{waste['wide']:g} / {waste['lr-find']:g}",
                verdict(trial_ratio <= GOAL and time_ratio <= GOAL),
            )
        )
    print_table(
        "Per seed; target = the wide range's final best; lr-find's own time is in its seconds",
        [
            "",
            "optimizer.lr range",
            "target",
            "best",
            "wall s",
            "trials to target",
            "s to target",
            f"trials < {WASTED_BELOW}",
        ],
        rows,
    )
    print_table(
        f"Medians over {seeds} seeds of the cost to reach the wide range's best",
        [
            "",
            "trials, wide",
            "lr-find",
            "ratio",
            "s, wide",
            "lr-find",
            "ratio",
            "reached",
            f"trials < {WASTED_BELOW}, wide / lr-find",
            "goal <= 1/2",
        ],
        summary,
    )
    print(
        "\nThe wide range's own cost is when it first reached its final best. One run per arm "
        f"and seed; numbers from a shared, noisy machine. At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
