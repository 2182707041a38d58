"""What a resumed run's searcher starts from, built from a plan of a store written by the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.resuming import WarmStart, plan_resume
from hpo.store import TrialStatus
from tests.resuming import stores


@pytest.fixture
def stopped_experiment(tmp_path: Path):
    return stores.stopped_experiment(tmp_path)


def test_the_warm_start_tells_the_finished_trials_and_enqueues_the_continued_ones(
    stopped_experiment,
):
    store, row, folders = stopped_experiment
    plan = plan_resume(store, row, 8, folders)
    warm = plan.warm_start()

    assert isinstance(warm, WarmStart)
    assert [(t.trial_id, t.status) for t in warm.told] == [
        ("t0", TrialStatus.COMPLETED),
        ("t1", TrialStatus.PRUNED),
        ("t2", TrialStatus.ERROR),
    ]
    assert warm.told[0].value == pytest.approx(0.5)
    assert warm.told[0].values == {
        1: pytest.approx(0.501),
        2: pytest.approx(0.502),
        3: pytest.approx(0.503),
        4: pytest.approx(0.504),
    }
    # The continued trials, in the plan's order, with their stored params and where they go on.
    assert [t.continuation.trial_id for t in warm.enqueued] == ["t3", "t4", "t5"]
    assert warm.enqueued[0].params == {
        "optimizer.lr": pytest.approx(0.004),
        "model.hidden_size": 16,
    }
    assert warm.enqueued[1].continuation == plan.continued[1].continuation
    assert (warm.taken, warm.new) == (6, 2)


def test_a_fresh_experiment_resumed_tells_nothing_and_proposes_every_trial(tmp_path: Path):
    store = stores.Store(f"sqlite:///{tmp_path / 'hpo.db'}")
    spec = {
        "metric": "val_loss",
        "mode": "min",
        "searcher": {"name": "optuna"},
        "scheduler": {"name": "fifo"},
        "seed": 0,
        "num_trials": 4,
    }
    store.create_experiment("fresh", spec, storage_path=str(tmp_path))
    warm = plan_resume(store, store.experiment("fresh"), 4, tmp_path / "fresh").warm_start()
    assert warm == WarmStart(told=[], enqueued=[], taken=0, new=4)
