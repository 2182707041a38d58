"""No work spent twice: TPE with 8 trials at once on a small discrete space, with and without
hpo's guards (constant liar, repeats answered from the store).

Issue 17's repeat benchmark. The space has 32 points (4 x 8 categories); the objective is a
noisy bowl, `(a - 2)^2 + (b - 5)^2 / 4 + noise`, reported once per trial by a user function
through `hpo.tune`. Each seed runs TPE (4 random start-up trials) for 32 trials, 8 at once:

- "guarded": hpo's defaults: constant liar, and a suggestion that repeats a finished trial's
  config is told its result instead of being trained (`repeat_of`);
- "plain": `constant_liar: false, allow_repeats: true`, what Ray's OptunaSearch does.

Per seed: the repeat rate (trials trained on a config an earlier trial of the run had
trained), the distinct configs trained, and the best value at the same budget of 32 trials.

    python benchmarks/repeats.py            # 5 seeds
    python benchmarks/repeats.py --quick    # 2 seeds, 16 trials
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from pathlib import Path

from _common import MACHINE, load_average, local_ray, print_table, quiet_libraries
from rich.console import Console

import hpo

SPACE = {
    "a": {"type": "categorical", "choices": [0, 1, 2, 3]},
    "b": {"type": "categorical", "choices": [0, 1, 2, 3, 4, 5, 6, 7]},
}
METHODS = {
    "guarded (hpo's default)": {},
    "plain (no liar, repeats trained)": {"constant_liar": False, "allow_repeats": True},
}


def bowl(config: dict) -> None:
    """A noisy bowl over the 32 points: the same config gives another value each time."""
    noise = random.Random().gauss(0, 0.3)
    hpo.report({"loss": (config["a"] - 2) ** 2 + (config["b"] - 5) ** 2 / 4 + noise})


def one_run(seed: int, options: dict, trials: int, store: str) -> tuple[float, int, float]:
    """(repeat rate, distinct configs trained, best loss) of one run."""
    experiment = hpo.tune(
        bowl,
        name=f"repeats-{seed}-{'plain' if options else 'guarded'}",
        space=SPACE,
        metric="loss",
        mode="min",
        seed=seed,
        searcher={"name": "optuna", "n_startup_trials": 4, **options},
        budget={"num_samples": trials, "max_concurrent": 8},
        resources={"cpu": 0.25},
        store=store,
        tracking={"tensorboard": False},
        console=Console(quiet=True),
    )
    table = experiment.trials()
    trained = table[table["repeat_of"].isna()]
    configs = list(zip(trained["params.a"], trained["params.b"], strict=True))
    repeats = len(configs) - len(set(configs))
    return repeats / len(table), len(set(configs)), float(table["best.loss"].min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 16 trials")
    args = parser.parse_args()
    seeds, trials = (2, 16) if args.quick else (5, 32)
    quiet_libraries()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, local_ray():
        store = f"sqlite:///{Path(tmp) / 'hpo.db'}"
        results: dict[str, list[tuple[float, int, float]]] = {m: [] for m in METHODS}
        for seed in range(seeds):
            for method, options in METHODS.items():
                results[method].append(one_run(seed, options, trials, store))
        for method, runs in results.items():
            rows.append(
                [
                    method,
                    f"{statistics.mean(r[0] for r in runs):.0%}",
                    f"{statistics.mean(r[1] for r in runs):.1f}",
                    f"{statistics.median(r[2] for r in runs):.3f}",
                    " ".join(f"{r[2]:.2f}" for r in runs),
                ]
            )
    print_table(
        f"TPE, {trials} trials, 8 at once, 32-point space, {seeds} seeds ({MACHINE}; "
        f"load average {load_average()})",
        ["method", "repeat rate", "distinct configs", "median best loss", "best per seed"],
        rows,
    )


if __name__ == "__main__":
    main()
