"""What the benchmark scripts share: one local Ray per script, timing, and the printed table.

Import this module before Ray: it sets the environment Ray reads at import time.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import chdir, contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, TypeVar

# Read by Ray when it is imported; set here so that every script sets it before that.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

T = TypeVar("T")

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
