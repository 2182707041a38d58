"""Constraints are parsed, never evaluated; the front is the non-dominated trials."""

from __future__ import annotations

import math

import pytest

from hpo.pareto import (
    Constraint,
    ConstraintError,
    feasible,
    front_mask,
    parse_constraint,
    ranked_front,
)
from hpo.types import Mode


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("n_params <= 200000", Constraint("n_params", "<=", 200000)),
        ("inference_ms<2.0", Constraint("inference_ms", "<", 2.0)),
        ("val_accuracy >= .9", Constraint("val_accuracy", ">=", 0.9)),
        ("1e5 >= n_params", Constraint("n_params", "<=", 1e5)),
    ],
)
def test_comparisons_parse(text, parsed):
    assert parse_constraint(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('x') <= 1", "parsed, not run as Python"),
        ("n_params <= 2 ** 10", "parsed, not run as Python"),
        ("n_params", "a comparison of a reported metric with a number"),
        ("val_accuracy == 0.9", "use a range"),
        ("a <= b", "parsed, not run as Python"),
    ],
)
def test_anything_else_is_refused(text, message):
    with pytest.raises(ConstraintError, match=message.replace("(", r"\(")):
        parse_constraint(text)


def test_violations_are_zero_or_less_when_met_and_infinite_when_missing():
    at_most = parse_constraint("n_params <= 100")
    assert at_most.violation({"n_params": 80}) == -20
    assert at_most.violation({"n_params": 130}) == 30
    assert at_most.violation({}) == math.inf
    assert at_most.violation({"n_params": math.nan}) == math.inf
    strictly = parse_constraint("x < 1")
    assert strictly.violation({"x": 1}) > 0  # violated at its bound
    assert feasible([at_most, strictly], {"n_params": 1, "x": 0.5})
    assert not feasible([at_most, strictly], {"n_params": 101, "x": 0.5})
    assert feasible([], {})


def test_the_front_is_the_non_dominated_rows():
    modes = [Mode.MAX, Mode.MIN]  # accuracy up, size down
    values = [[0.9, 100], [0.95, 200], [0.85, 150], [0.9, 100], [0.99, 1000], [math.nan, 1]]
    assert front_mask(values, modes) == [True, True, False, True, True, False]


def test_feasible_trials_come_first():
    modes = [Mode.MAX, Mode.MIN]
    values = [[0.99, 10], [0.9, 100], [0.8, 50]]
    # the dominating trial is infeasible: the front is that of the feasible ones
    assert ranked_front(values, modes, [False, True, True]) == [False, True, True]
    # none feasible: the front of all
    assert ranked_front(values, modes, [False, False, False]) == [True, False, False]
    assert ranked_front([], modes, []) == []
