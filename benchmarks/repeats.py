"""No work spent twice: TPE with 8 trials at once on a small discrete space, with and without
hpo's guards (constant liar, repeats answered from the store).

Issue 17's repeat benchmark. The space has 32 points (4 x 8 categories); the objective is a
noisy bowl, `(a - 2)^2 + (b - 5)^2 / 4 + noise`, reported once per trial by a user function
through `hpo.tune`. Each seed runs TPE (4 random start-up trials) for 32 trials, 8 at once:

- "guarded": hpo's defaults: constant liar, and a suggestion that repeats a finished trial's
  config is told its result instead of being trained (`repeat_of`);
- "plain": `constant_liar: false, allow_repeats: true`, what Ray's OptunaSearch does.

Per seed: the repeat rate (trials trained on a config an earlier trial of the run had
trained), the distinct configs trained, and at the same budget of 32 trials the best reported
loss and the noise-free loss of that trial's config (0 is the optimum). With noise, the best
reported loss of a run that trains the same configs again is biased low (the minimum of more
noisy draws of one config); the noise-free loss of the config it picks is what counts.

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


def true_loss(a: int, b: int) -> float:
    """The bowl without its noise: 0 at the optimum (a=2, b=5)."""
    return (a - 2) ** 2 + (b - 5) ** 2 / 4


def bowl(config: dict) -> None:
    """A noisy bowl over the 32 points: the same config gives another value each time."""
    noise = random.Random().gauss(0, 0.3)
    hpo.report({"loss": true_loss(config["a"], config["b"]) + noise})


def one_run(seed: int, options: dict, trials: int, store: str) -> tuple[float, int, float, float]:
    """(repeat rate, distinct configs trained, best reported loss, the true loss of the best
    reported trial's config) of one run."""
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
    best = trained.loc[trained["best.loss"].idxmin()]
    true = true_loss(int(best["params.a"]), int(best["params.b"]))
    return repeats / len(table), len(set(configs)), float(best["best.loss"]), true


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 16 trials")
    args = parser.parse_args()
    seeds, trials = (2, 16) if args.quick else (5, 32)
    quiet_libraries()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, local_ray():
        store = f"sqlite:///{Path(tmp) / 'hpo.db'}"
        results: dict[str, list[tuple[float, int, float, float]]] = {m: [] for m in METHODS}
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
                    f"{statistics.median(r[3] for r in runs):.3f}",
                    " ".join(f"{r[3]:.2f}" for r in runs),
                ]
            )
    print_table(
        f"TPE, {trials} trials, 8 at once, 32-point space, {seeds} seeds ({MACHINE}; "
        f"{load_average()})",
        [
            "method",
            "repeat rate",
            "distinct configs",
            "median best reported loss",
            "median true loss of that config",
            "true loss per seed",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
