"""Ray's OptunaSearch that sets each trial's constraints on its Optuna trial before telling
the study (see `hpo.search._constrained`). Imported only when a search has constraints: it
imports Ray and Optuna."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from hpo.pareto import Constraint
from hpo.search._constrained import constraint_values


class ConstrainedOptunaSearch(OptunaSearch):
    """Ray's OptunaSearch, told the spec's constraints."""

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
