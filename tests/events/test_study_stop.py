"""`budget.stop_when`: the decision of `StudyStop`, fed trial events as the stream makes them."""

from __future__ import annotations

import math

import pytest

from hpo.events import StoredTrial, StudyStop, TrialEnded, TrialError
from hpo.types import Mode, TrialStatus


def _ended(number: int, value: float | None, status: TrialStatus = TrialStatus.COMPLETED):
    best = {} if value is None else {"loss": value}
    trial = StoredTrial(f"t{number}", number, {}, {}, status, iteration=3, best=best)
    error = TrialError("ValueError", "ValueError: x", "") if status is TrialStatus.ERROR else None
    return TrialEnded(trial, error=error)


def _feed(stop: StudyStop, values: list) -> list[bool]:
    stops = []
    for number, value in enumerate(values):
        stop.receive(_ended(number, value))
        stops.append(stop.stop_all())
    return stops


def test_no_improvement_stops_after_the_patience():
    stop = StudyStop("loss", Mode.MIN, patience=3, min_delta=0.01)
    # 0.5 is the best; 0.495 is better by less than min_delta, so it does not reset the count.
    assert _feed(stop, [0.9, 0.5, 0.6, 0.495, 0.7]) == [False, False, False, False, True]
    assert stop.reason == (
        "no improvement of loss by more than 0.01 in the last 3 finished trials "
        "(budget.stop_when.no_improvement); the best, 0.495, was trial 3"
    )


def test_an_improvement_resets_the_count():
    stop = StudyStop("loss", Mode.MIN, patience=2)
    assert _feed(stop, [0.9, 0.95, 0.5, 0.6, 0.7]) == [False, False, False, False, True]


def test_reaches_stops_at_the_target_in_either_mode():
    low = StudyStop("loss", Mode.MIN, reaches=0.1)
    assert _feed(low, [0.5, 0.1, 0.05]) == [False, True, True]
    assert low.reason == "loss reached 0.1 (budget.stop_when.reaches): 0.1 at trial 1"
    high = StudyStop("loss", Mode.MAX, reaches=0.9)
    assert _feed(high, [0.5, 0.89, 0.95]) == [False, False, True]


def test_errors_do_not_count_and_nan_is_no_improvement():
    stop = StudyStop("loss", Mode.MIN, patience=2)
    stop.receive(_ended(0, 0.5))
    for number in (1, 2, 3):
        stop.receive(_ended(number, None, TrialStatus.ERROR))
    assert not stop.stop_all()
    stop.receive(_ended(4, math.nan, TrialStatus.PRUNED))
    stop.receive(_ended(5, 0.6, TrialStatus.PRUNED))
    assert stop.stop_all()


@pytest.mark.parametrize("patience", [None, 5])
def test_it_never_stops_a_single_trial(patience):
    stop = StudyStop("loss", Mode.MIN, patience=patience, reaches=0.0)
    assert stop("t0", {"loss": -1.0}) is False
