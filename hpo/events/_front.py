"""The Pareto front so far, for the live view and the lines of a search of several
objectives: kept from the trials that ended, by their last reported values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hpo.events._events import StoredTrial
from hpo.pareto import Constraint, feasible, ranked_front
from hpo.types import Mode, TrialStatus


class FrontSoFar:
    """The non-dominated trials among those that ended (feasible ones first)."""

    def __init__(self, objectives: Mapping[str, Mode], constraints: Sequence[Constraint] = ()):
        self.objectives = dict(objectives)
        self.constraints = list(constraints)
        self.ended: dict[int, StoredTrial] = {}  # by number: those with every objective

    def add(self, trial: StoredTrial) -> None:
        if trial.status is not TrialStatus.ERROR and all(n in trial.last for n in self.objectives):
            self.ended[trial.number] = trial

    def members(self) -> list[StoredTrial]:
        """The front's trials, best first by the first objective."""
        trials = list(self.ended.values())
        values = [[t.last[name] for name in self.objectives] for t in trials]
        on = ranked_front(
            values,
            list(self.objectives.values()),
            [feasible(self.constraints, t.last) for t in trials],
        )
        first, mode = next(iter(self.objectives.items()))
        members = [t for t, keep in zip(trials, on, strict=True) if keep]
        return sorted(members, key=lambda t: -mode.sign * t.last[first])

    def summary(self, limit: int = 8) -> str:
        """`front 3: #4 (0.97, 2287), #9 (0.95, 685), ...`: its size and members."""
        members = self.members()
        if not members:
            return "front: none yet"
        shown = ", ".join(
            f"#{t.number} ({', '.join(_short(t.last[n]) for n in self.objectives)})"
            for t in members[:limit]
        )
        more = f", +{len(members) - limit}" if len(members) > limit else ""
        return f"front {len(members)}: {shown}{more}"


def _short(value: float) -> str:
    return f"{value:.4g}"
