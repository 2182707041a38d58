"""What a searcher of a resumed run starts from, built from the plan: the searcher needs to
know the earlier trials and what to propose first, not how the plan was made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.resuming._marker import Continuation

if TYPE_CHECKING:
    from hpo.resuming._plan import FinishedTrial, ResumePlan


@dataclass(frozen=True)
class Enqueued:
    """A continued trial, proposed again before any new one."""

    params: dict[str, Any]  # its searched params, by dotted key
    continuation: Continuation  # for its config's marker (`hpo.resuming.mark`)


@dataclass(frozen=True)
class WarmStart:
    told: list[FinishedTrial]  # the finished trials, to tell a searcher that learns
    enqueued: list[Enqueued]  # the continued trials, in order
    taken: int  # proposals the searcher made before: new ones go on from here
    new: int  # new proposals to make after the enqueued ones


def warm_start(plan: ResumePlan) -> WarmStart:
    """The searcher's part of `plan`."""
    enqueued = [Enqueued(t.params, t.continuation) for t in plan.continued]
    return WarmStart(list(plan.finished), enqueued, plan.taken, plan.new)
