"""Constraints for Optuna's samplers: each trial's violations, set on its Optuna trial.

Optuna's samplers prefer the trials whose constraints (`Trial.set_constraint`, Optuna's
replacement of the deprecated `constraints_func`) are all 0 or less. Ray's OptunaSearch tells
the study only the objectives' values, so hpo's sets the constraints on the Optuna trial just
before Ray's tells the study. A resumed study gets the same values from the store
(`optuna_trial(constraints=...)`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hpo.pareto import Constraint


def constraint_values(
    constraints: Sequence[Constraint], metrics: Mapping[str, Any]
) -> dict[str, float]:
    """Each constraint's violation by its text (`"n_params <= 200000"`), as Optuna keeps it:
    0 or less is met; a missing metric is infinitely far from meeting its constraint."""
    return {str(c): c.violation(metrics) for c in constraints}


def optuna_search(constraints: Sequence[Constraint], *args: Any, **kwargs: Any) -> Any:
    """Ray's OptunaSearch, which sets the constraints when there are any (see the module's doc)."""
    if not constraints:
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(*args, **kwargs)
    from hpo.search._constrained_search import ConstrainedOptunaSearch

    return ConstrainedOptunaSearch(*args, constraints=constraints, **kwargs)
