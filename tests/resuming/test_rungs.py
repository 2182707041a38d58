"""ASHA's rungs in a resumed run, on Ray's own scheduler (no Ray cluster needed)."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from hpo.resuming import CONTINUE_KEY, Continuation, mark, move_rungs, restore_rungs
from hpo.search._schedulers import AshaScheduler

CONTINUED = Continuation("c", 2, None, 2, 2)


def test_asha_rungs_are_rebuilt_from_the_history_and_follow_a_continued_trial():
    history = {"a": {1: 0.9, 2: 0.95, 3: 0.96, 4: 0.97}, "b": {1: 0.5}, "c": {1: 0.7, 2: 0.8}}
    scheduler = AshaScheduler(name="asha", reduction_factor=2).build(epochs=4, history=history)
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
        epochs=4, history={"a": {1: 0.3}}
    )
    minimizing.set_search_properties("val_loss", "min")
    assert minimizing._brackets[0]._rungs[-1][1] == {"a": -0.3}  # as Ray records a minimum


def _asha(mode: str | None = "max") -> ASHAScheduler:
    asha = ASHAScheduler(
        time_attr="training_iteration", max_t=4, grace_period=1, reduction_factor=2
    )
    if mode is not None:
        asha.set_search_properties("val_accuracy", mode)
    return asha


def test_rungs_wait_for_the_mode_their_records_depend_on():
    asha = _asha(mode=None)
    assert not restore_rungs(asha, {"a": {1: 0.9}})
    asha.set_search_properties("val_accuracy", "max")
    assert restore_rungs(asha, {"a": {1: 0.9}})
    assert asha._brackets[0]._rungs[-1][1] == {"a": 0.9}


def test_restored_rungs_decide_a_new_trial_as_an_uninterrupted_run_would():
    # Three earlier trials reached the first rung (epoch 1); the new trial is judged among them.
    history = {"a": {1: 0.9}, "b": {1: 0.8}, "c": {1: 0.7}}
    decisions = {}
    for restored in (False, True):
        asha = _asha()
        if restored:
            restore_rungs(asha, history)
        trial = SimpleNamespace(trial_id="new", config={})
        asha.on_trial_add(None, trial)
        result = {"training_iteration": 1, "val_accuracy": 0.6}
        decisions[restored] = asha.on_trial_result(None, trial, result)
    # Alone at its rung it would go on; behind the earlier trials' records it stops.
    assert decisions == {False: TrialScheduler.CONTINUE, True: TrialScheduler.STOP}


def test_a_continued_trials_records_move_to_its_new_ray_id_and_others_stay():
    asha = _asha()
    restore_rungs(asha, {"c": {1: 0.7, 2: 0.8}, "d": {1: 0.6}})
    move_rungs(asha, SimpleNamespace(trial_id="ray-new", config=mark({}, CONTINUED)))
    move_rungs(asha, SimpleNamespace(trial_id="ray-other", config=mark({}, None)))
    rungs = {milestone: recorded for milestone, recorded in asha._brackets[0]._rungs}
    assert rungs[1] == {"ray-new": 0.7, "d": 0.6}
    assert rungs[2] == {"ray-new": 0.8}
