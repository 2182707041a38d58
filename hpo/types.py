"""Types for the decisions every part of hpo makes: which way a metric is better, and what
state a trial or an experiment is in.

Imported by the trial workers and by the CLI's validation: no torch, no Ray, no pandas.
"""

from __future__ import annotations

import functools
import math
from enum import Enum


class _Choice(str, Enum):
    """A string choice that prints as itself (`f"{Mode.MAX}"` is "max"), as it is stored."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Mode(_Choice):
    """Which way a metric is better."""

    MIN = "min"
    MAX = "max"

    @property
    def direction(self) -> str:
        """Optuna's name for it: 'minimize' or 'maximize'."""
        return "minimize" if self is Mode.MIN else "maximize"

    @property
    def sign(self) -> int:
        """+1 where higher is better, -1 where lower is: `sign * value` is higher-is-better."""
        return 1 if self is Mode.MAX else -1

    def better(self, a: float, b: float) -> bool:
        """Whether `a` is better than `b`."""
        return a < b if self is Mode.MIN else a > b

    def best(self, values: list[float]) -> float:
        """The best of `values` (which must not be empty)."""
        return min(values) if self is Mode.MIN else max(values)


class TrialStatus(_Choice):
    PENDING = "PENDING"  # created by the searcher, waiting for resources
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"  # ended by itself: all its epochs, or early stopping
    PRUNED = "PRUNED"  # stopped early by the scheduler
    ERROR = "ERROR"
    INTERRUPTED = "INTERRUPTED"  # running or waiting when its run was stopped; `hpo resume` goes on

    @property
    def finished(self) -> bool:
        """Ended for good: a resume does not run it again (an errored one only if asked)."""
        return self in (TrialStatus.COMPLETED, TrialStatus.PRUNED, TrialStatus.ERROR)

    @property
    def succeeded(self) -> bool:
        """Ended with results that count: all its epochs, an early stop, or pruned."""
        return self in (TrialStatus.COMPLETED, TrialStatus.PRUNED)


class ExperimentStatus(_Choice):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"  # no trial finished without an error
    INTERRUPTED = "INTERRUPTED"


_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "rmse")
_HIGHER_IS_BETTER = ("acc", "f1", "precision", "recall", "r2", "auc")


@functools.cache  # asked for every metric of every result by the driver
def metric_mode(name: str, metric: str, mode: Mode) -> Mode | None:
    """Which way `name` is better: `mode` for the search's `metric`; for the others, what the
    name says (a loss is lower-is-better, an accuracy higher), or None where it does not tell
    (e.g. `lr`)."""
    if name == metric:
        return Mode(mode)
    lowered = name.lower()
    if any(part in lowered for part in _LOWER_IS_BETTER):
        return Mode.MIN
    if any(part in lowered for part in _HIGHER_IS_BETTER):
        return Mode.MAX
    return None


def keep_best(best: dict[str, float], metrics: dict[str, float], metric: str, mode: Mode) -> None:
    """Update `best` (metric -> best value so far) with one result's finite values."""
    for name, value in metrics.items():
        direction = metric_mode(name, metric, mode)
        if (
            direction
            and math.isfinite(value)
            and (name not in best or direction.better(value, best[name]))
        ):
            best[name] = value
