"""ASHA's rungs in a resumed run, on Ray's own scheduler (no Ray cluster needed)."""

from __future__ import annotations

from types import SimpleNamespace

from hpo.resuming import CONTINUE_KEY
from hpo.search._schedulers import AshaScheduler


def test_asha_rungs_are_rebuilt_from_the_history_and_follow_a_continued_trial():
    history = {"a": {1: 0.9, 2: 0.95, 3: 0.96, 4: 0.97}, "b": {1: 0.5}, "c": {1: 0.7, 2: 0.8}}
    scheduler = AshaScheduler(name="asha", reduction_factor=2).build(
        epochs=4, pruned=set(), history=history
    )
    scheduler.set_search_properties("val_accuracy", "max")
    rungs = {milestone: dict(recorded) for milestone, recorded in scheduler._brackets[0]._rungs}
    assert rungs == {4: {"a": 0.97}, 2: {"a": 0.95, "c": 0.8}, 1: {"a": 0.9, "b": 0.5, "c": 0.7}}

    # What the scheduler reads of a Ray trial: its id and config.
    marker = {"trial_id": "c", "number": 2, "checkpoint": None, "iteration": 2, "stored": 2}
    trial = SimpleNamespace(trial_id="new-ray-id", config={CONTINUE_KEY: marker})
    scheduler.on_trial_add(None, trial)
    rungs = {milestone: recorded for milestone, recorded in scheduler._brackets[0]._rungs}
    assert "c" not in rungs[2] and rungs[2]["new-ray-id"] == 0.8

    minimizing = AshaScheduler(name="asha", reduction_factor=2).build(
        epochs=4, pruned=set(), history={"a": {1: 0.3}}
    )
    minimizing.set_search_properties("val_loss", "min")
    assert minimizing._brackets[0]._rungs[-1][1] == {"a": -0.3}  # as Ray records a minimum
