"""The resume plan, from a store written by the test: what goes on, from where, and what is new."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.resuming import plan_resume
from tests.resuming import stores


@pytest.fixture
def stopped_experiment(tmp_path: Path):
    return stores.stopped_experiment(tmp_path)


def test_plan_keeps_finished_trials_and_continues_the_rest_from_their_checkpoints(
    stopped_experiment,
):
    store, row, folders = stopped_experiment
    plan = plan_resume(store, row, 8, folders)

    assert [t.trial_id for t in plan.finished] == ["t0", "t1", "t2"]
    continued = {t.continuation.trial_id: t for t in plan.continued}
    assert sorted(continued) == ["t3", "t4", "t5"]
    assert continued["t3"].continuation.iteration == 2
    assert continued["t3"].continuation.checkpoint.endswith("checkpoint_000002")
    assert continued["t3"].last_step == 3  # epoch 3 is run and reported again
    assert continued["t3"].recovered == []
    # t4's checkpoint holds the two results the store missed: t4 goes on from it, reporting
    # them again rather than training them again; the scheduler judges them then (it had
    # judged t4 at the stored epochs only).
    assert continued["t4"].continuation.checkpoint.endswith("checkpoint_000004")
    assert continued["t4"].continuation.iteration == 4
    assert continued["t4"].continuation.stored == continued["t4"].last_step == 2
    assert continued["t4"].recovered == [3, 4]
    assert sorted(continued["t4"].values) == [1, 2]
    assert continued["t4"].best["val_accuracy"] == pytest.approx(0.542)
    assert continued["t5"].continuation.number == 5
    assert not continued["t5"].started  # it waited: its start is still to be recorded
    assert continued["t3"].values == {1: pytest.approx(0.531), 2: pytest.approx(0.532)}
    assert continued["t3"].best["val_accuracy"] == pytest.approx(0.532)
    # The budget: 8 trials in the end, 6 of them exist.
    assert (plan.taken, plan.new, plan.num_trials) == (6, 2, 5)

    errored = plan_resume(store, row, 8, folders, errored=True)
    assert "t2" in {t.continuation.trial_id for t in errored.continued}
    assert errored.num_trials == 6
