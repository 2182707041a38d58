"""The schedulers of the registry, built as the runner builds them, driven with Ray's own
`Trial` objects (no Ray cluster needed)."""

from __future__ import annotations

import itertools
import math

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from hpo.search import (
    SCHEDULERS,
    UNBOUNDED_T,
    AshaScheduler,
    FloatDist,
    HyperbandScheduler,
    IntDist,
    MedianScheduler,
    PbtScheduler,
    Space,
    milestones,
)
from hpo.search._pbt import mutations, within_bounds


def _trial(trial_id: str) -> Trial:
    return Trial("__fake", stub=True, trial_id=trial_id)


def _report(scheduler, trial: Trial, epoch: int, loss: float) -> str:
    return scheduler.on_trial_result(None, trial, {"training_iteration": epoch, "loss": loss})


def test_every_scheduler_is_in_the_registry():
    assert {"fifo", "asha", "hyperband", "median", "pbt"} <= set(SCHEDULERS)


def test_hyperband_brackets_start_at_later_rungs():
    scheduler = HyperbandScheduler(name="hyperband", reduction_factor=2, brackets=3).build(
        epochs=16
    )
    rungs = [sorted(int(m) for m, _ in bracket._rungs) for bracket in scheduler._brackets]
    assert rungs == [[1, 2, 4, 8, 16], [2, 4, 8, 16], [4, 8, 16]]
    assert rungs == [milestones(1, 2, 16, s) for s in range(3)]  # what --dry-run shows


def test_asha_without_max_t_has_rungs_without_end():
    scheduler = AshaScheduler(name="asha", grace_period=2, reduction_factor=3).build(epochs=None)
    rungs = sorted(int(m) for m, _ in scheduler._brackets[0]._rungs)
    assert rungs[:5] == [2, 6, 18, 54, 162]
    assert all(b == a * 3 for a, b in itertools.pairwise(rungs))
    assert scheduler._max_t == UNBOUNDED_T
    (line,) = AshaScheduler(name="asha").describe(epochs=None)
    assert "without end" in line and "1, 3, 9, 27, 81" in line


def test_asha_without_max_t_prunes_a_trailing_trial_and_lets_a_leader_go_on():
    pruned: list[str] = []
    scheduler = AshaScheduler(name="asha", reduction_factor=2).build(
        epochs=None, on_prune=pruned.append
    )
    scheduler.set_search_properties("loss", "min")
    good, bad = _trial("good"), _trial("bad")
    for trial in (good, bad):
        scheduler.on_trial_add(None, trial)
    assert _report(scheduler, good, 1, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, bad, 1, 0.9) == TrialScheduler.STOP
    # Far past any max_t a spec would give, the leader is still not stopped for its length.
    for epoch in range(2, 200):
        assert _report(scheduler, good, epoch, 0.1) == TrialScheduler.CONTINUE
    assert pruned == ["bad"]


def _median(pruned: list[str], min_samples: int = 2):
    scheduler = MedianScheduler(
        name="median", grace_period=1, min_samples_required=min_samples
    ).build(epochs=5, on_prune=pruned.append)
    scheduler.set_search_properties("loss", "min")
    return scheduler


def test_median_rule_stops_a_trial_worse_than_the_median():
    pruned: list[str] = []
    scheduler = _median(pruned)
    trials = [_trial(name) for name in ("a", "b", "c")]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    for epoch in (1, 2):
        _report(scheduler, trials[0], epoch, 0.1)
        _report(scheduler, trials[1], epoch, 0.2)
    assert _report(scheduler, trials[2], 1, 0.5) == TrialScheduler.STOP
    assert pruned == ["c"]


def test_a_nan_trial_stops_no_other_trial():
    """ray-project/ray#24809: one NaN must not make the median NaN (or stop everyone)."""
    pruned: list[str] = []
    scheduler = _median(pruned)
    nan, a, b, c = (_trial(name) for name in ("nan", "a", "b", "c"))
    for trial in (nan, a, b, c):
        scheduler.on_trial_add(None, trial)
    for epoch in (1, 2, 3):
        assert _report(scheduler, nan, epoch, math.nan) == TrialScheduler.CONTINUE
        _report(scheduler, a, epoch, 0.3)
        _report(scheduler, b, epoch, 0.4)
    # c is better than the median of a and b: the NaN trial does not count against it.
    for epoch in (1, 2, 3):
        assert _report(scheduler, c, epoch, 0.2) == TrialScheduler.CONTINUE
    # A trial with one NaN epoch is judged by its finite ones.
    assert _report(scheduler, a, 4, math.inf) == TrialScheduler.CONTINUE
    assert pruned == []


def test_the_median_rule_never_pauses_for_want_of_samples():
    pruned: list[str] = []
    scheduler = _median(pruned, min_samples=3)
    only = _trial("only")
    scheduler.on_trial_add(None, only)
    assert _report(scheduler, only, 2, 0.5) == TrialScheduler.CONTINUE


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"name": "fifo"}, "every trial runs to its end"),
        ({"name": "asha", "reduction_factor": 2}, "rungs at epochs 1, 2, 4, 8, last 8"),
        (
            {"name": "hyperband", "brackets": 2, "reduction_factor": 2},
            "bracket 1: rungs at epochs 2, 4, 8",
        ),
        ({"name": "median", "min_samples_required": 4}, "at least 4 other trials"),
    ],
)
def test_each_scheduler_describes_itself_for_the_dry_run(options, fragment):
    lines = SCHEDULERS[options["name"]](**options).describe(epochs=8)
    assert any(fragment in line for line in lines), lines


# --- PBT ---------------------------------------------------------------------------------


def _space() -> Space:
    return Space(
        {
            "optimizer.lr": FloatDist(type="float", low=1e-3, high=0.1, log=True),
            "optimizer.momentum": FloatDist(type="float", low=0.0, high=0.9, step=0.3),
            "model.hidden_size": IntDist(type="int", low=8, high=64),
        }
    )


def test_pbt_mutates_the_optimizer_keys_within_their_distributions():
    space = _space()
    pbt = PbtScheduler(name="pbt", perturbation_interval=2)
    keys = pbt.mutated_keys(list(space))
    assert keys == ["optimizer.lr", "optimizer.momentum"]
    found = mutations(space, keys)
    assert found["optimizer"]["momentum"] == [0.0, 0.3, 0.6, 0.9]  # moved to a neighbour
    assert found["optimizer"]["lr"].lower == 1e-3  # Ray's loguniform, drawn afresh or scaled
    clip = within_bounds(space, keys)
    assert clip({"optimizer": {"lr": 0.2, "momentum": 0.6}}) == {
        "optimizer": {"lr": 0.1, "momentum": 0.6}
    }
    assert clip({"optimizer": {"lr": 1e-4, "momentum": 0.3}})["optimizer"]["lr"] == 1e-3


def test_pbt_builds_ray_pbt_that_reports_each_exploit():
    told = []
    scheduler = PbtScheduler(name="pbt", perturbation_interval=2).build(
        epochs=8, space=_space(), on_exploit=told.append
    )
    assert scheduler._perturbation_interval == 2
    assert set(scheduler._hyperparam_mutations["optimizer"]) == {"lr", "momentum"}
    assert (PbtScheduler.keeps_checkpoints, AshaScheduler.keeps_checkpoints) == (True, False)


def test_a_clone_keeps_its_own_optimizer_hyperparameters_and_the_schedule_progress():
    import torch

    from hpo.trainable.pipeline import _keep_hyperparameters
    from hpo.trainable.schedules import LRSchedule

    def optimizer(lr: float, momentum: float):
        opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=lr, momentum=momentum)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    source, source_steps = optimizer(0.1, 0.9)
    for _ in range(2):  # the source's schedule has halved its rate twice: 0.025
        source.step()
        source_steps.step()
    mine, my_steps = optimizer(0.02, 0.5)
    own = [{k: v for k, v in g.items() if k != "params"} for g in mine.param_groups]
    mine.load_state_dict(source.state_dict())
    my_steps.load_state_dict(source_steps.state_dict())
    _keep_hyperparameters(mine, own, LRSchedule(my_steps))
    group = mine.param_groups[0]
    assert group["momentum"] == 0.5
    assert group["lr"] == pytest.approx(0.02 * 0.25)  # mine, as far along the schedule
    my_steps.step()
    assert mine.param_groups[0]["lr"] == pytest.approx(0.02 * 0.125)
