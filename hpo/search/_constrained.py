"""Constraints for Optuna's samplers: each trial's violations, set on its Optuna trial.

Optuna's samplers prefer the trials whose constraints (`Trial.set_constraint`, Optuna's
replacement of the deprecated `constraints_func`) are all 0 or less. Ray's OptunaSearch tells
the study only the objectives' values, so hpo's sets the constraints on the Optuna trial just
before Ray's tells the study. A resumed study gets the same values from the store
(`optuna_trial(constraints=...)`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from hpo.pareto import Constraint


def constraint_values(
    constraints: Sequence[Constraint], metrics: Mapping[str, Any]
) -> dict[str, float]:
    """Each constraint's violation by its text (`"n_params <= 200000"`), as Optuna keeps it:
    0 or less is met; a missing metric is infinitely far from meeting its constraint."""
    return {str(c): c.violation(metrics) for c in constraints}


@functools.cache
def _search_class() -> type:
    from ray.tune.search.optuna import OptunaSearch

    class ConstrainedOptunaSearch(OptunaSearch):
        """Ray's OptunaSearch that sets each trial's constraints before telling the study.

        Defined once, at module level through this cache, so that Ray can pickle it."""

        def __init__(self, *args: Any, constraints: Sequence[Constraint], **kwargs: Any):
            super().__init__(*args, **kwargs)
            self._hpo_constraints = list(constraints)

        def on_trial_complete(
            self, trial_id: str, result: dict | None = None, error: bool = False
        ) -> None:
            # `_ot_trials` is Ray's map of its trials to Optuna's (a test checks it holds).
            ot_trial = self._ot_trials.get(trial_id)
            if ot_trial is not None and result and trial_id not in self._completed_trials:
                for key, value in constraint_values(self._hpo_constraints, result).items():
                    ot_trial.set_constraint(key, value)
            super().on_trial_complete(trial_id, result, error)

    return ConstrainedOptunaSearch


def optuna_search(constraints: Sequence[Constraint], *args: Any, **kwargs: Any) -> Any:
    """Ray's OptunaSearch, which sets the constraints when there are any (see the module's doc)."""
    if not constraints:
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(*args, **kwargs)
    return _search_class()(*args, constraints=constraints, **kwargs)
