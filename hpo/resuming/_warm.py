"""What a searcher starts from: the trials it is told before its first proposal, and the
configs it proposes first.

Two sources, one shape: a resumed run's plan (its earlier trials, its continued trials) and
the spec's `warm_start` and `enqueue` (`Prior`: trials of other experiments, hand-picked and
best configs). The searcher needs to know the trials and what to propose first, not how the
lists were made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
class Prior:
    """What the spec's `warm_start` and `enqueue` give a search before its first trial.

    The `first` configs are the search's own first proposals (its trials 0, 1, ...), so a
    resumed run, which goes on from its `taken` proposals, never proposes them twice.
    """

    told: list[FinishedTrial] = field(default_factory=list)  # other experiments' trials
    first: list[dict[str, Any]] = field(default_factory=list)  # params to propose first
    notes: list[str] = field(default_factory=list)  # what was told and enqueued, for the user

    def __bool__(self) -> bool:
        return bool(self.told or self.first)


@dataclass(frozen=True)
class WarmStart:
    told: list[FinishedTrial]  # this experiment's finished trials, to tell a searcher that learns
    enqueued: list[Enqueued]  # the continued trials, in order
    taken: int  # proposals the searcher made before: new ones go on from here
    new: int  # new proposals to make after the enqueued ones
    prior: Prior = field(default_factory=Prior)  # from the spec's warm_start and enqueue

    @property
    def resumed(self) -> bool:
        """Whether a run of the experiment came before (its trials are told, continued)."""
        return bool(self.told or self.enqueued or self.taken)

    def every_told(self) -> list[FinishedTrial]:
        """The trials to tell a searcher that learns: other experiments' first, then this one's."""
        return [*self.prior.told, *self.told]

    def first(self) -> list[dict[str, Any]]:
        """The spec's first configs that are still to be proposed (those before `taken` were)."""
        return self.prior.first[self.taken :]


def warm_start(plan: ResumePlan, prior: Prior | None = None) -> WarmStart:
    """The searcher's part of a resumed run's `plan`, with the spec's `prior` (a new
    experiment's is `fresh`)."""
    prior = prior or Prior()
    enqueued = [Enqueued(t.params, t.continuation) for t in plan.continued]
    return WarmStart(list(plan.finished), enqueued, plan.taken, plan.new, prior)


def fresh(prior: Prior, num_trials: int) -> WarmStart | None:
    """What a new experiment's searcher starts from: nothing (None), or the spec's `prior`."""
    if not prior:
        return None
    return WarmStart([], [], 0, num_trials, prior)
