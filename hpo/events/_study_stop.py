"""Stop the whole search when it stops improving, or once it reaches a target
(`budget.stop_when`; after Optuna's Terminator, optuna/optuna#4398).

Like `FailFast`, a consumer of the trial events (it sees each trial's end and its best value)
and Ray's stopper (its `stop_all()` ends the search). Only trials that ended without an error
count: a failed trial says nothing of whether the search still improves. The trials that are
running when it stops are ended by Ray and recorded as INTERRUPTED (see `run_tuner`), and the
experiment ends COMPLETED with the reason stored (`Store.finish_experiment`).

In a run that `hpo resume --continue` goes on with, the count starts again: the user asked to
go on past the stop.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.stopper import Stopper

from hpo.events._events import Consumer, Event, TrialEnded
from hpo.types import Mode, TrialStatus


class StudyStop(Consumer, Stopper):
    """Ends the search on `no_improvement` (patience in finished trials, and the least change
    that counts as better) or once the best value `reaches` a target.

    Args:
        metric: the spec's metric; mode: whether lower or higher is better.
        patience: finished trials without an improvement that stop the search (None: never).
        min_delta: how much better than the best so far a value must be to count.
        reaches: the value at (or past) which the search stops (None: never).
    """

    def __init__(
        self,
        metric: str,
        mode: Mode,
        *,
        patience: int | None = None,
        min_delta: float = 0.0,
        reaches: float | None = None,
    ):
        self.metric = metric
        self.sign = 1.0 if Mode(mode) is Mode.MIN else -1.0  # lower is better after the sign
        self.patience = patience
        self.min_delta = min_delta
        self.reaches = reaches
        self.best: float | None = None
        self.best_number: int | None = None
        self.since_best = 0  # finished trials since the best one
        self.reason: str | None = None  # why it stopped, once it has

    def receive(self, event: Event) -> None:
        if self.reason is not None or not isinstance(event, TrialEnded):
            return
        if event.status not in (TrialStatus.COMPLETED, TrialStatus.PRUNED):
            return
        value = event.trial.best.get(self.metric)
        if value is None or not math.isfinite(value):
            self.since_best += 1  # finished without a usable value: no improvement
        elif self.best is None or self.sign * value < self.sign * self.best - self.min_delta:
            self.best, self.best_number, self.since_best = value, event.trial.number, 0
        else:
            self.since_best += 1
            if self.sign * value < self.sign * self.best:
                # Better, but by less than min_delta: the best moves, the count does not reset.
                self.best, self.best_number = value, event.trial.number
        self._decide()

    def _decide(self) -> None:
        reached = self.reaches is not None and self.best is not None
        if reached and self.sign * self.best <= self.sign * self.reaches:
            self.reason = (
                f"{self.metric} reached {self.reaches:g} (budget.stop_when.reaches): "
                f"{self.best:.6g} at trial {self.best_number}"
            )
            return
        if self.patience is not None and self.since_best >= self.patience:
            best = (
                "no trial had a value"
                if self.best is None
                else (f"the best, {self.best:.6g}, was trial {self.best_number}")
            )
            self.reason = (
                f"no improvement of {self.metric} by more than {self.min_delta:g} in the last "
                f"{self.patience} finished trials (budget.stop_when.no_improvement); {best}"
            )

    # --- the stopper -----------------------------------------------------------------------

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False  # no single trial is stopped by this; the whole search is

    def stop_all(self) -> bool:
        return self.reason is not None
