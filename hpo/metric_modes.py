"""Which way is better for a metric: the spec says it for its own; names tell for the others."""

from __future__ import annotations

import functools
import math

_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "rmse")
_HIGHER_IS_BETTER = ("acc", "f1", "precision", "recall", "r2", "auc")


@functools.cache  # asked for every metric of every result by the driver's callbacks
def metric_mode(name: str, metric: str, mode: str) -> str | None:
    """'min' or 'max' for a metric, or None when its name does not tell (e.g. `lr`)."""
    if name == metric:
        return mode
    lowered = name.lower()
    if any(part in lowered for part in _LOWER_IS_BETTER):
        return "min"
    if any(part in lowered for part in _HIGHER_IS_BETTER):
        return "max"
    return None


def better(a: float, b: float, mode: str) -> bool:
    """Whether `a` is better than `b` in `mode`."""
    return a < b if mode == "min" else a > b


def keep_best(best: dict[str, float], metrics: dict[str, float], metric: str, mode: str) -> None:
    """Update `best` (metric -> best value so far) with one result's finite values."""
    for name, value in metrics.items():
        direction = metric_mode(name, metric, mode)
        if (
            direction
            and math.isfinite(value)
            and (name not in best or better(value, best[name], direction))
        ):
            best[name] = value
