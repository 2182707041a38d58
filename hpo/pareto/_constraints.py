"""Constraints on reported metrics: `"<metric> <op> <number>"`, parsed by a regular
expression and never evaluated, so a spec cannot run code through them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_COMPARISON = re.compile(rf"\s*({_NAME})\s*(<=|>=|<|>|==)\s*({_NUMBER})\s*")
_REVERSED = re.compile(rf"\s*({_NUMBER})\s*(<=|>=|<|>|==)\s*({_NAME})\s*")
_FLIPPED = {"<=": ">=", ">=": "<=", "<": ">", ">": "<", "==": "=="}

_FORM = "a comparison of a reported metric with a number, such as 'n_params <= 200000'"


class ConstraintError(ValueError):
    """A constraint that is not `<metric> <op> <number>`; the message says what is."""


@dataclass(frozen=True)
class Constraint:
    """`metric op bound`, where op is one of <=, >=, <, >."""

    metric: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    def violation(self, metrics: Mapping[str, Any]) -> float:
        """How far `metrics` are from satisfying it, as Optuna's samplers take it:
        0 or less when satisfied, more the further off; infinite when the metric is missing
        or not finite (such a trial cannot count as feasible)."""
        value = metrics.get(self.metric)
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            return math.inf
        excess = value - self.bound if self.op in ("<=", "<") else self.bound - value
        if self.op in ("<", ">") and excess == 0:
            # A strict comparison is violated at the bound; Optuna counts 0 as feasible.
            return math.ulp(self.bound) or math.ulp(1.0)
        return float(excess)


def parse_constraint(text: str) -> Constraint:
    """Parse `"n_params <= 200000"` (or `"200000 >= n_params"`).

    Raises:
        ConstraintError: the text is not such a comparison, or compares with `==` (floats
            are never exactly equal after training: use a range).
    """
    if not isinstance(text, str):
        raise ConstraintError(f"expected {_FORM}, but got {text!r}")
    match = _COMPARISON.fullmatch(text)
    if match:
        metric, op, number = match.groups()
    elif (match := _REVERSED.fullmatch(text)) is not None:
        number, op, metric = match.groups()
        op = _FLIPPED[op]
    else:
        raise ConstraintError(
            f"expected {_FORM}, but got {text!r}; constraints are parsed, not run as Python"
        )
    if op == "==":
        raise ConstraintError(
            f"{text!r} compares with '==', which a reported float almost never meets exactly; "
            f"use a range, e.g. '{metric} <= {number}' and '{metric} >= {number}'"
        )
    return Constraint(metric, op, float(number))


def violations(constraints: Sequence[Constraint], metrics: Mapping[str, Any]) -> list[float]:
    """Each constraint's violation (`Constraint.violation`), in order."""
    return [c.violation(metrics) for c in constraints]


def feasible(constraints: Sequence[Constraint], metrics: Mapping[str, Any]) -> bool:
    """Whether `metrics` satisfy every constraint (True when there are none)."""
    return all(v <= 0 for v in violations(constraints, metrics))
