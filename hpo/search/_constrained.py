"""Constraints for Optuna's samplers: their `constraints_func`, and the one step that gives it
each trial's metrics.

Optuna asks `constraints_func(trial)` after a trial ends; Ray's OptunaSearch tells the study
only the objectives' values. So hpo's OptunaSearch writes the constraints' violations into
the Optuna trial's user attributes just before Ray's tells the study, and `ConstraintsFunc`
reads them back. A resumed study gets the same attributes from the store (`optuna_trial`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from hpo.pareto import Constraint, violations

# The user attribute of an Optuna trial that holds its constraints' violations.
VIOLATIONS_ATTR = "hpo_constraint_violations"


class ConstraintsFunc:
    """Optuna's `constraints_func` for the spec's constraints: each one's violation (0 or less
    is met). A class, not a closure: Ray pickles the sampler with the searcher."""

    def __init__(self, constraints: Sequence[Constraint]):
        self.constraints = list(constraints)

    def __call__(self, trial: Any) -> list[float]:
        told = trial.user_attrs.get(VIOLATIONS_ATTR)
        # A trial that ended without its metrics (stopped before reporting) meets nothing.
        return list(told) if told is not None else [math.inf] * len(self.constraints)

    def of(self, metrics: dict[str, Any]) -> list[float]:
        """The violations of a trial's metrics, as they are stored in its user attributes.

        Optuna cannot rank an infinite violation against a finite one exactly, but it orders
        them; a missing metric is infinitely far from meeting its constraint."""
        return violations(self.constraints, metrics)


@functools.cache
def _search_class() -> type:
    from ray.tune.search.optuna import OptunaSearch

    class ConstrainedOptunaSearch(OptunaSearch):
        """Ray's OptunaSearch that tells the sampler the trial's constraint violations."""

        def __init__(self, *args: Any, constraints: ConstraintsFunc, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self._hpo_constraints = constraints

        def on_trial_complete(
            self, trial_id: str, result: dict | None = None, error: bool = False
        ) -> None:
            # `_ot_trials` is Ray's map of its trials to Optuna's (tested to still exist).
            ot_trial = self._ot_trials.get(trial_id)
            if ot_trial is not None and result and trial_id not in self._completed_trials:
                ot_trial.set_user_attr(VIOLATIONS_ATTR, self._hpo_constraints.of(result))
            super().on_trial_complete(trial_id, result, error)

    return ConstrainedOptunaSearch


def optuna_search(constraints: Sequence[Constraint], *args: Any, **kwargs: Any) -> Any:
    """Ray's OptunaSearch, told the constraints when there are any (see the module's doc)."""
    if not constraints:
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(*args, **kwargs)
    return _search_class()(*args, constraints=ConstraintsFunc(constraints), **kwargs)
