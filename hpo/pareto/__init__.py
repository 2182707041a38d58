"""Several objectives at once: their directions, the constraints on reported metrics, and the
Pareto front of a set of trials.

Plain Python and numpy only (no torch, Ray or pandas): the spec's validation, the searchers,
the store's readers and the trial workers all use it.

- `_constraints`: `"n_params <= 200000"` parsed (never evaluated) into a `Constraint`;
- `_front`: which trials are non-dominated, feasible ones first.
"""

from hpo.pareto._constraints import (
    Constraint,
    ConstraintError,
    feasible,
    parse_constraint,
    violations,
)
from hpo.pareto._front import front_mask, ranked_front

__all__ = [
    "Constraint",
    "ConstraintError",
    "feasible",
    "front_mask",
    "parse_constraint",
    "ranked_front",
    "violations",
]
