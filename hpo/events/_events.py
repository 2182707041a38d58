"""hpo's own trial events, and the base of the classes that consume them.

`hpo.events._stream.TrialStream` makes these out of Ray Tune's callback hooks, once; every
consumer (the store recorder, the live view, the trackers, fail-fast, the checkpoint keeper)
reads them and nothing of Ray's. The facts about a trial (which stored trial it is, its
number, its best so far, whether it was pruned) are worked out by the stream alone, so they
cannot drift apart between consumers.

No Ray here: the consumers and their tests need none.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hpo.types import TrialStatus


@dataclass(frozen=True)
class StoredTrial:
    """A trial as the store keeps it, at the moment of an event (a snapshot: later events
    bring new ones)."""

    trial_id: str  # its id in the store (for a continued trial, that of the run that made it)
    number: int
    params: dict[str, Any]
    config: dict[str, Any]  # without hpo's continuation marker
    status: TrialStatus
    iteration: int = 0  # its last reported iteration (a continued trial's: the store's)
    last: dict[str, float] = field(default_factory=dict)  # its last result's metrics
    best: dict[str, float] = field(default_factory=dict)  # each metric's best so far
    continued: bool = False  # continued by `hpo resume` from an earlier run
    repeat_of: int | None = None  # the number of the trial whose config it repeats, untrained


@dataclass(frozen=True)
class TrialError:
    """What a trial raised: its type's name, `Type: message`, and the traceback.

    Running out of memory, whatever raised it, has the type `out_of_memory`; from hpo's
    trainable it also says the trial's peak memory and the micro-batches it ended with.
    """

    type: str
    message: str
    traceback: str
    peak_memory_mb: float | None = None
    micro_batches: int | None = None


@dataclass(frozen=True)
class SearchStarted:
    """The search begins. `succeeded_before`: an earlier run of the experiment (`hpo resume`)
    had a trial that ended without an error."""

    succeeded_before: bool = False


@dataclass(frozen=True)
class TrialAdded:
    """The searcher made a trial; it waits for resources."""

    trial: StoredTrial


@dataclass(frozen=True)
class TrialStarted:
    """A trial runs. `first`: its first start (not one after a failure Ray retries, nor that
    of a continued trial that ran before), which is when the trial's start time is taken."""

    trial: StoredTrial
    first: bool


@dataclass(frozen=True)
class TrialReported:
    """A trial reported one iteration's metrics (the numbers of its result, as the store
    keeps them; `trial` already holds them).

    `again`: the trial reported this iteration before (restored from a checkpoint by Ray's
    retry or by `hpo resume`): this result and those after it replace the earlier ones.
    """

    trial: StoredTrial
    iteration: int
    metrics: dict[str, float]
    again: bool = False
    node: str | None = None  # the node that ran it, where the trial says


@dataclass(frozen=True)
class TrialEnded:
    """A trial ended for good: COMPLETED (by itself), PRUNED (by the scheduler) or ERROR.

    Args:
        error: what it raised, for an ERROR.
        checkpoint: its latest checkpoint's directory, where it has one Ray knows of (or the
            one `hpo resume` continued it from, if it ended there).
        folders: where its checkpoints lie on this machine's disk (none if it has no folder).
    """

    trial: StoredTrial
    error: TrialError | None = None
    checkpoint: str | None = None
    folders: tuple[Path, ...] = ()

    @property
    def status(self) -> TrialStatus:
        return self.trial.status


@dataclass(frozen=True)
class TrialRepeated:
    """The searcher suggested a finished trial's config again: it was told that trial's
    result instead of training it (`trial.repeat_of`; `trial.status` is the original's)."""

    trial: StoredTrial


@dataclass(frozen=True)
class TrialExploited:
    """PBT cloned `source` into `trial`: from `iteration` on, `trial` goes on from the
    checkpoint of `source` at that epoch, with `params` (the values of PBT's mutated keys)."""

    trial: StoredTrial
    source: StoredTrial
    iteration: int
    params: dict[str, Any]


@dataclass(frozen=True)
class StepEnded:
    """Ray's loop went round once (many times a second): time for work done by the clock."""


@dataclass(frozen=True)
class TrialsWaiting:
    """Trials have waited long for resources with none running (said again every few seconds
    while they wait; a trial that starts ends the wait)."""

    message: str  # what they wait for, e.g. "3 trials have waited 61 s for 1 GPU each; ..."


@dataclass(frozen=True)
class SearchEnded:
    """The search is over (every trial ended, or it was stopped)."""


Event = (
    SearchStarted
    | TrialAdded
    | TrialStarted
    | TrialReported
    | TrialEnded
    | TrialRepeated
    | TrialExploited
    | TrialsWaiting
    | StepEnded
    | SearchEnded
)


class Consumer(abc.ABC):
    """What does something with the trial events; the stream hands it every one, in order."""

    # Tracking is not worth a trial: the stream logs a failure of a best-effort consumer and
    # stops feeding it, where any other consumer's failure fails the trial, as Ray does.
    best_effort: ClassVar[bool] = False

    @abc.abstractmethod
    def receive(self, event: Event) -> None:
        """Take one event (most consumers act on a few kinds and let the rest pass)."""

    def close(self) -> None:  # noqa: B027 (most consumers hold nothing open)
        """Let go of what it holds open: the run is over, or failed."""
