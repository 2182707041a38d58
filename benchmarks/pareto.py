"""Several objectives (issue 16): does hpo's plumbing lose anything against Optuna alone?

1. The plumbing: ZDT1 (2 objectives) and DTLZ2 (3), NSGA-II, one trial at a time, through
   `hpo.tune` (runner, store, Ray Tune's OptunaSearch) and through Optuna alone with the same
   sampler and seed: the hypervolume of each side's trials (Optuna's own
   `optuna._hypervolume.compute_hypervolume`, minimisation, reference point stated), median
   over seeds. Goal: within 2%.
2. The real task: the digits MLP (`search_spaces/digits_pareto.yaml` without its constraint:
   val_accuracy max, n_params min), 40 trials on 2 workers, NSGA-II: `hpo run` as a whole
   process, against Optuna alone (2 processes sharing a journal-file study, each with the
   sampler seeded seed + rank, as Optuna's multi-process recipe has it), training the same
   MLP on the same split with hpo's loop. The hypervolume of (1 - val_accuracy,
   n_params / 45,000) with reference (1, 1), median of 3 seeds; and each side's wall time.
   Goal: hpo's hypervolume at least Optuna alone's.

    .venv/bin/python benchmarks/pareto.py [--quick]

`--quick`: 40 trials over 2 seeds for the plumbing, and 16 digits trials over 1 seed.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from contextlib import chdir
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # sets Ray's environment before Ray is imported

SPEC = Path(__file__).resolve().parent.parent / "search_spaces" / "digits_pareto.yaml"
POPULATION = 20
# Every trial of these problems is inside the box: the hypervolume counts them all.
PROBLEMS = {
    "ZDT1": {"variables": 6, "objectives": 2, "reference": [1.1, 11.0]},
    "DTLZ2": {"variables": 7, "objectives": 3, "reference": [2.5, 2.5, 2.5]},
}
N_PARAMS_SCALE = 45_000  # above the largest MLP of the space (3 layers of 128: 42,634)


def zdt1(x: list[float]) -> list[float]:
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return [x[0], g * (1 - math.sqrt(x[0] / g))]


def dtlz2(x: list[float]) -> list[float]:
    g = sum((v - 0.5) ** 2 for v in x[2:])
    a, b = x[0] * math.pi / 2, x[1] * math.pi / 2
    return [
        (1 + g) * math.cos(a) * math.cos(b),
        (1 + g) * math.cos(a) * math.sin(b),
        (1 + g) * math.sin(a),
    ]


FUNCTIONS = {"ZDT1": zdt1, "DTLZ2": dtlz2}


def problem_trainable(config: dict[str, Any]) -> None:
    import hpo

    problem = config["problem"]
    x = [config[f"x{i}"] for i in range(PROBLEMS[problem]["variables"])]
    values = FUNCTIONS[problem](x)
    hpo.report({f"f{i + 1}": v for i, v in enumerate(values)})


def hypervolume(points: list[list[float]], reference: list[float]) -> float:
    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    inside = [p for p in points if all(v < r for v, r in zip(p, reference, strict=True))]
    if not inside:
        return 0.0
    return float(compute_hypervolume(np.array(inside), np.array(reference)))


def plumbing_hpo(problem: str, seed: int, trials: int, workdir: Path) -> list[list[float]]:
    from rich.console import Console

    import hpo

    setup = PROBLEMS[problem]
    names = [f"f{i + 1}" for i in range(setup["objectives"])]
    spec = {
        "name": f"{problem}-{seed}",
        "seed": seed,
        "objectives": dict.fromkeys(names, "min"),
        "space": {
            f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(setup["variables"])
        },
        "config": {"problem": problem},
        "searcher": {"name": "optuna", "sampler": "nsga2", "population_size": POPULATION},
        # One at a time: the same order of ask and tell as Optuna's own loop.
        "budget": {"num_samples": trials, "max_concurrent": 1},
        "store": f"sqlite:///{workdir / 'hpo.db'}",
        "tracking": {"tensorboard": False},
    }
    with chdir(workdir):
        experiment = hpo.tune(problem_trainable, spec, console=Console(quiet=True))
    table = experiment.trials()
    return table[[f"final.{n}" for n in names]].dropna().values.tolist()


def plumbing_optuna(problem: str, seed: int, trials: int) -> list[list[float]]:
    import optuna

    setup = PROBLEMS[problem]
    study = optuna.create_study(
        directions=["minimize"] * setup["objectives"],
        sampler=optuna.samplers.NSGAIISampler(seed=seed, population_size=POPULATION),
    )

    def objective(trial: optuna.Trial) -> list[float]:
        x = [trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(setup["variables"])]
        return FUNCTIONS[problem](x)

    study.optimize(objective, n_trials=trials)
    return [t.values for t in study.trials if t.values is not None]


# --- the real task -----------------------------------------------------------------------------


def _digits_overrides(seed: int, trials: int) -> dict[str, Any]:
    return {"seed": seed, "budget.num_samples": trials, "constraints": []}


def digits_points(rows: list[tuple[float, float]]) -> list[list[float]]:
    return [[1 - accuracy, n_params / N_PARAMS_SCALE] for accuracy, n_params in rows]


def digits_hpo(seed: int, trials: int, workdir: Path) -> tuple[float, list[list[float]]]:
    from hpo.results import Experiment

    command = [sys.executable, "-m", "hpo", "run", str(SPEC)]
    for key, value in _digits_overrides(seed, trials).items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    command += ["--store", f"sqlite:///{workdir / 'hpo.db'}", "--set", "tracking.tensorboard=false"]
    run = _common.Process("hpo run", command, workdir)
    run.finish(run.start())
    table = Experiment("digits_pareto", f"sqlite:///{workdir / 'hpo.db'}").trials()
    rows = table[["final.val_accuracy", "final.n_params"]].dropna().values.tolist()
    return run.ended - run.started, digits_points(rows)


def digits_worker(seed: int, trials: int, journal: str, rank: int, share: int) -> None:
    import optuna
    import torch

    from hpo.search._space import optuna_name, set_path
    from hpo.spec._spec import load_spec
    from hpo.trainable.data import load_dataset
    from hpo.trainable.loop import fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)  # one core per process, as Ray gives each trial
    spec = load_spec(SPEC, _digits_overrides(seed, trials))
    dataset = load_dataset(spec.data)
    space = spec.search_space()
    define = space.optuna_define_by_run()

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        define(trial)
        config = spec.base_config()
        for key in space:
            set_path(config, key, trial.params[optuna_name(key)])
        *_, last = fit(config, dataset)  # the last epoch's metrics, as hpo reports them
        return last["val_accuracy"], last["n_params"]

    study = optuna.load_study(
        study_name="digits",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal)),
        sampler=optuna.samplers.NSGAIISampler(
            seed=seed + rank, population_size=spec.searcher.population_size
        ),
    )
    study.optimize(objective, n_trials=share)


def digits_optuna(seed: int, trials: int, workdir: Path) -> tuple[float, list[list[float]]]:
    import optuna

    journal = str(workdir / "optuna.journal")
    started = time.perf_counter()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.create_study(
        study_name="digits", storage=storage, directions=["maximize", "minimize"]
    )
    context = multiprocessing.get_context("spawn")
    shares = [trials // 2 + (r < trials % 2) for r in range(2)]
    workers = [
        context.Process(target=digits_worker, args=(seed, trials, journal, rank, share))
        for rank, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    rows = [tuple(t.values) for t in study.trials if t.values is not None]
    return elapsed, digits_points(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    plumbing_trials, plumbing_seeds = (40, 2) if args.quick else (200, 5)
    digits_trials, digits_seeds = (16, 1) if args.quick else (40, 3)
    print(f"{_common.MACHINE}; {_common.load_average()} at the start")
    _common.quiet_libraries()

    rows = []
    with _common.local_ray(), tempfile.TemporaryDirectory() as tmp:
        for problem, setup in PROBLEMS.items():
            ours, theirs = [], []
            for seed in range(plumbing_seeds):
                workdir = Path(tmp) / f"{problem}-{seed}"
                workdir.mkdir()
                ours.append(
                    hypervolume(
                        plumbing_hpo(problem, seed, plumbing_trials, workdir), setup["reference"]
                    )
                )
                theirs.append(
                    hypervolume(plumbing_optuna(problem, seed, plumbing_trials), setup["reference"])
                )
            a, b = statistics.median(ours), statistics.median(theirs)
            gap = abs(a - b) / b
            rows.append(
                (
                    f"{problem}, {setup['objectives']} objectives, ref {setup['reference']}",
                    f"{a:.4f}",
                    f"{b:.4f}",
                    f"{gap:.2%} (goal <= 2%: {_common.verdict(gap <= 0.02)})",
                )
            )
    _common.print_table(
        f"The plumbing: NSGA-II (population {POPULATION}), {plumbing_trials} trials, median "
        f"hypervolume of {plumbing_seeds} seeds",
        ["problem", "hpo.tune", "Optuna alone", "difference"],
        rows,
    )
    print(_common.load_average())

    hv: dict[str, list[float]] = {"hpo": [], "optuna": []}
    walls: dict[str, list[float]] = {"hpo": [], "optuna": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(digits_seeds):
            for side, run in (("hpo", digits_hpo), ("optuna", digits_optuna)):
                workdir = Path(tmp) / f"{side}-{seed}"
                workdir.mkdir()
                wall, points = run(seed, digits_trials, workdir)
                walls[side].append(wall)
                hv[side].append(hypervolume(points, [1.0, 1.0]))
    a, b = statistics.median(hv["hpo"]), statistics.median(hv["optuna"])
    _common.print_table(
        f"The digits MLP: val_accuracy max, n_params min, {digits_trials} trials, 2 workers, "
        f"NSGA-II, median of {digits_seeds} seeds (hypervolume of (1 - accuracy, "
        f"n_params / {N_PARAMS_SCALE:,}), ref (1, 1))",
        ["measurement", "hpo run (whole process)", "Optuna alone", "goal"],
        [
            (
                "hypervolume",
                f"{a:.4f}",
                f"{b:.4f}",
                f"hpo >= Optuna: {_common.verdict(a >= b)} ({a / b:.3f}x)",
            ),
            (
                "wall time (s)",
                f"{statistics.median(walls['hpo']):.1f}",
                f"{statistics.median(walls['optuna']):.1f}",
                "reported",
            ),
        ],
    )
    print(f"per seed: hypervolume {hv}, wall {walls}")
    print(f"{_common.load_average()} at the end")


if __name__ == "__main__":
    main()
