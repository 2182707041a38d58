"""A trial whose loss or searched metric is NaN or infinite fails, with that reason.

A non-finite value is not a result: told to a searcher as a value, it would rank the
configuration (a NaN compares as neither better nor worse) or poison its model. Raising in
the trial instead makes Ray tell the searcher the trial failed (Optuna records it as FAIL),
and the store keeps the reason: which metric, which epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Any


def watched(name: str, metric: str | None) -> bool:
    """Whether a reported number must be finite: the search's metric, and any loss."""
    return name == metric or "loss" in name


def check_finite(
    metrics: Mapping[str, Any], metric: str | None, epoch: int, hint: str = ""
) -> None:
    """Raise if the search's metric or a loss among `metrics` is NaN or infinite.

    `hint` (e.g. "; try a lower optimizer.lr") ends the message.

    Raises:
        FloatingPointError: naming the metric, its value and the epoch.
    """
    for name, value in metrics.items():
        if (
            isinstance(value, Real)
            and not isinstance(value, bool)
            and watched(name, metric)
            and not math.isfinite(value)
        ):
            raise FloatingPointError(f"{name} became {value} in epoch {epoch}{hint}")
