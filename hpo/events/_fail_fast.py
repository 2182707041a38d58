"""Stop a search early when its first trials all fail with the same error.

When the first few trials to end all raise the same exception (the same type and message),
the fault is almost surely in the training code (a typo, a wrong key, a missing file), not
in a configuration, and every further trial would fail the same way. Ray Tune stops the
whole search when a `Stopper`'s `stop_all()` says so; this one says so once `threshold`
trials have ended with one error before any trial ended without one.

A NaN or infinite loss (`FloatingPointError`) does not count: that is what a bad
configuration (too high a learning rate) does, and other configurations may train well. Nor
does running out of memory (`out_of_memory`): too large a batch or model for the device.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ray.tune.stopper import Stopper

from hpo.events._events import Consumer, Event, SearchStarted, TrialEnded, TrialError
from hpo.trainable.memory import OUT_OF_MEMORY

# Errors that depend on the configuration, so repeating them says nothing about the code.
_CONFIGURATION_ERRORS = {FloatingPointError.__name__, OUT_OF_MEMORY}


class FailFast(Consumer, Stopper):
    """A consumer of the trial events (which sees trial errors) and Ray's stopper (which ends
    the search).

    Args:
        threshold: trials failing with one error, before any success, that stop the search;
            0 never stops it.
    """

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.errors: Counter[tuple[str, str]] = Counter()  # (type, message) -> trials
        self.succeeded = False
        self.tripped: tuple[str, str] | None = None  # the repeated error, once stopped

    # --- the consumer ----------------------------------------------------------------------

    def receive(self, event: Event) -> None:
        match event:
            case SearchStarted(succeeded_before=True):
                self.succeeded = True  # the code worked before: errors now are configurations'
            case TrialEnded(error=TrialError() as error):
                self._failed(error)
            case TrialEnded() if self.tripped is None:
                self.succeeded = True  # some configuration works: failures are its neighbours'

    def _failed(self, error: TrialError) -> None:
        if not self.threshold or self.succeeded or self.tripped is not None:
            return
        if error.type in _CONFIGURATION_ERRORS:
            return
        self.errors[error.type, error.message] += 1
        if self.errors[error.type, error.message] >= self.threshold:
            self.tripped = (error.type, error.message)

    # --- the stopper -----------------------------------------------------------------------

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False  # no single trial is stopped by this; the whole search is

    def stop_all(self) -> bool:
        return self.tripped is not None

    def reason(self) -> str:
        """Why the search stopped (only once it has)."""
        assert self.tripped is not None
        return (
            f"the search stopped early (budget.fail_fast: {self.threshold}): "
            f"{self.threshold} trials failed with the same error before any succeeded, "
            f"which looks like a bug in the training code: {self.tripped[1]}"
        )
