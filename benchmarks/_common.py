"""What the benchmark scripts share: one local Ray per script, timing, and the printed table.

Import this module before Ray: it sets the environment Ray reads at import time.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import chdir, contextmanager, redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from hpo.spec._spec import Spec

# Read by Ray when it is imported; set here so that every script sets it before that.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

T = TypeVar("T")

# The quickstart's spec, which the digits benchmarks run.
SPEC = Path(__file__).resolve().parent.parent / "search_spaces" / "digits_mlp.yaml"

# Said next to every number: the benchmarks run on a small machine other people use too.
MACHINE = (
    f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), CPU only, "
    "shared with other jobs: expect noise of 10-30% between runs"
)

# Bare Ray Tune at its fastest: what an expert sets by hand (hpo sets the same for its runs).
RAY_FAST_ENVIRONMENT = {
    # Per-trial JSON/CSV/TensorBoard files cost time per result.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # The newer console output prints its banner and tables even at verbose=0.
    "RAY_AIR_NEW_OUTPUT": "0",
}


@contextmanager
def local_ray(num_cpus: int = 2) -> Iterator[None]:
    """One quiet local Ray for the whole script, shut down at its end."""
    import ray

    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a block, and restore what was there before."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def stdout_discarded() -> Iterator[None]:
    """Send a block's console output to /dev/null: Ray's default progress tables are part of
    its default cost, but not of the printed results."""
    with open(os.devnull, "w") as devnull, redirect_stdout(devnull):
        yield


def run_ray_tune(
    trainable: Callable[[dict[str, Any]], Any],
    num_trials: int,
    workdir: Path,
    *,
    fast: bool,
    constants: Mapping[str, Any] | None = None,
) -> float:
    """Wall time of `num_trials` trials of `trainable` on bare Ray Tune, one float `x` searched
    at random (plus `constants` in each config); `fast` turns on its best settings (actor
    reuse, no per-trial loggers, quiet console: what hpo sets for its own runs)."""
    from ray import tune

    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1), **(constants or {})},
        tune_config=tune.TuneConfig(
            metric="score", mode="max", num_samples=num_trials, reuse_actors=fast
        ),
        run_config=tune.RunConfig(storage_path=str(workdir), **({"verbose": 0} if fast else {})),
    )
    settings = RAY_FAST_ENVIRONMENT if fast else {}
    with environment(settings), stdout_discarded():
        started = time.perf_counter()
        tuner.fit()
        return time.perf_counter() - started


def run_hpo_tune(
    train_fn: Callable[[dict[str, Any]], Any],
    num_trials: int,
    workdir: Path,
    *,
    constants: Mapping[str, Any] | None = None,
    **options: Any,
) -> float:
    """Wall time of `hpo.tune(train_fn, ...)` (runner, store, progress view) on the same search
    as `run_ray_tune`, results in `workdir`; `options` go to `hpo.tune` (`budget__max_concurrent`...)."""
    from rich.console import Console

    import hpo

    # hpo writes its per-run folder under the working directory; keep it in `workdir`.
    with chdir(workdir):
        started = time.perf_counter()
        hpo.tune(
            train_fn,
            space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
            config=dict(constants or {}),
            metric="score",
            mode="max",
            budget__num_samples=num_trials,
            store=f"sqlite:///{workdir / 'hpo.db'}",
            console=Console(quiet=True),
            **options,
        )
        return time.perf_counter() - started


def quiet_libraries() -> None:
    """Keep Optuna's and Ray's per-trial log lines out of the printed tables."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("ray", "ray.tune", "ray.tune.search.variant_generator"):
        logging.getLogger(name).setLevel(logging.ERROR)


def timed(fn: Callable[[], T], repeats: int = 1) -> tuple[float, T]:
    """The median wall time of `repeats` calls of `fn`, and the last call's return value.

    The median, not the minimum: on a shared machine both are noisy, and the median is what
    a user sees on a typical call.
    """
    times: list[float] = []
    value: Any = None
    for _ in range(repeats):
        started = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows as a plain aligned table (floats with 3 significant digits)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for row in cells:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def load_average() -> str:
    """The machine's 1-minute load average, printed beside the numbers: above the core count,
    other jobs were competing with the benchmark."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def verdict(ok: bool) -> str:
    """The word a table shows beside a goal."""
    return "met" if ok else "MISSED"


def optuna_worker(overrides: dict[str, Any], journal: str, rank: int, num_trials: int) -> None:
    """One Optuna process: TPE with its successive-halving pruner on the shared study."""
    import optuna
    import torch

    from hpo.search._space import optuna_name, set_path
    from hpo.spec._spec import load_spec
    from hpo.trainable.data import load_dataset
    from hpo.trainable.loop import fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)  # one core per process, as Ray gives each trial
    spec = load_spec(SPEC, overrides)
    dataset = load_dataset(spec.data)
    space = spec.search_space()
    define = space.optuna_define_by_run()
    asha = spec.scheduler

    def objective(trial: optuna.Trial) -> float:
        define(trial)
        config = spec.base_config()
        for key in space:
            set_path(config, key, trial.params[optuna_name(key)])
        value = float("nan")
        for metrics in fit(config, dataset):
            value = metrics[spec.metric]
            trial.report(value, metrics["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study = optuna.load_study(
        study_name="digits",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal)),
        # Each process its own seed, or both would propose the same first trials.
        sampler=optuna.samplers.TPESampler(
            seed=spec.seed + rank, n_startup_trials=spec.searcher.n_startup_trials
        ),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=asha.grace_period, reduction_factor=int(asha.reduction_factor)
        ),
    )
    study.optimize(objective, n_trials=num_trials)


def run_optuna(
    spec: Spec, workdir: Path, overrides: dict[str, Any], processes: int = 2
) -> tuple[float, float]:
    """Optuna alone: `processes` processes sharing one study (Optuna's multi-process recipe)."""
    import optuna

    journal = str(workdir / "optuna.journal")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.create_study(
        study_name="digits",
        storage=storage,
        direction="maximize" if spec.mode.value == "max" else "minimize",
    )
    # Spawned, not forked: the parent holds Ray's threads and connections.
    context = multiprocessing.get_context("spawn")
    shares = [
        spec.num_trials() // processes + (r < spec.num_trials() % processes)
        for r in range(processes)
    ]
    workers = [
        context.Process(target=optuna_worker, args=(overrides, journal, rank, share))
        for rank, share in enumerate(shares)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if any(worker.exitcode for worker in workers):
        raise RuntimeError("an Optuna process failed; see its traceback above")
    return elapsed, study.best_value


# The quickstart as whole processes: `hpo run` through its CLI, and Optuna alone (the parent
# that creates the study and its 2 worker processes), each a fresh process in its own folder.


@dataclass
class Process:
    """A whole-process run: its command, folder, and wall-clock times (seconds since the epoch)."""

    label: str
    command: list[str]
    workdir: Path
    started: float = 0.0
    ended: float = 0.0

    def start(self) -> subprocess.Popen[bytes]:
        # The child keeps its own copy of the file; this process needs none.
        with open(self.workdir / "output.log", "wb") as log:
            self.started = time.time()
            return subprocess.Popen(
                self.command,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
            )

    def finish(self, process: subprocess.Popen[bytes]) -> None:
        """Wait for the process, note its end, and fail with its output's tail if it failed."""
        process.wait()
        self.ended = time.time()
        if process.returncode:
            tail = (self.workdir / "output.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.label} exited {process.returncode}:\n{tail}")


def hpo_process(workdir: Path, overrides: Mapping[str, Any]) -> Process:
    """`hpo run search_spaces/digits_mlp.yaml` as a user types it, in a fresh folder."""
    # The `hpo` of this Python's environment first: "hpo" on PyPI is an unrelated project.
    beside = Path(sys.executable).parent / "hpo"
    command = [str(beside) if beside.exists() else shutil.which("hpo") or "hpo", "run", str(SPEC)]
    command += [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
    command += ["--store", f"sqlite:///{workdir / 'hpo.db'}"]
    return Process("hpo run", command, workdir)


def optuna_process(workdir: Path, overrides: Mapping[str, Any]) -> Process:
    """Optuna alone (`run_optuna`: 2 processes sharing a journal-file study) as one process."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import _common; _common.optuna_main()"
    )
    return Process(
        "Optuna alone",
        [sys.executable, "-c", code, str(workdir), json.dumps(dict(overrides))],
        workdir,
    )


def optuna_main() -> None:
    """The Optuna-alone process: `sys.argv` holds its folder and the spec's overrides (JSON)."""
    from hpo.spec._spec import load_spec

    workdir, overrides = Path(sys.argv[1]), json.loads(sys.argv[2])
    run_optuna(load_spec(SPEC, overrides), workdir, overrides)


def trial_span(run: Process) -> tuple[float, float]:
    """When the first trial started and the last one ended (seconds since the epoch), from
    what the run wrote: hpo's store, or the timestamps Optuna's workers put in the journal."""
    if run.label == "hpo run":
        with sqlite3.connect(run.workdir / "hpo.db") as db:
            first, last = db.execute("SELECT min(started_at), max(ended_at) FROM trials").fetchone()
        # The store keeps naive UTC.
        return tuple(  # type: ignore[return-value]
            datetime.fromisoformat(t).replace(tzinfo=timezone.utc).timestamp()
            for t in (first, last)
        )
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run.workdir / "optuna.journal"))
    )
    trials = optuna.load_study(study_name="digits", storage=storage).trials
    # Optuna writes naive local time, which `timestamp()` reads as local.
    return (
        min(t.datetime_start for t in trials if t.datetime_start).timestamp(),
        max(t.datetime_complete for t in trials if t.datetime_complete).timestamp(),
    )
