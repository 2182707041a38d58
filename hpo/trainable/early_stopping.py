"""Early stopping inside a trial: stop once the monitored metric stops improving."""

from __future__ import annotations

import math
from typing import Any

from hpo.types import Mode


class EarlyStopping:
    """Counts epochs without an improvement of more than `min_delta` in the given mode.

    Args:
        patience: epochs without improvement after which to stop; None never stops.
        min_delta: the least change that counts as an improvement.
        mode: "min" or "max", the metric's better direction.
    """

    def __init__(self, patience: int | None, min_delta: float = 0.0, mode: Mode | str = Mode.MIN):
        mode = Mode(mode)  # a ValueError names the value for anything but "min" or "max"
        self.patience = patience
        self.min_delta = min_delta
        self.sign = -float(mode.sign)  # compare as "lower is better"
        self.best: float | None = None
        self.bad_epochs = 0
        self.stopped = False

    def update(self, value: float) -> bool:
        """Record one epoch's value of the metric; True when training should stop now."""
        score = self.sign * value
        # NaN never improves: a trial whose metric is undefined should not be kept alive.
        if math.isfinite(score) and (self.best is None or score < self.best - self.min_delta):
            self.best, self.bad_epochs = score, 0
        else:
            self.bad_epochs += 1
        self.stopped = self.patience is not None and self.bad_epochs >= self.patience
        return self.stopped

    @property
    def best_value(self) -> float | None:
        """The best value seen so far, in the metric's own sign."""
        return None if self.best is None else self.sign * self.best

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "stopped": self.stopped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.bad_epochs = int(state["bad_epochs"])
        self.stopped = bool(state["stopped"])
