"""Searchers given a resumed run's warm state: what they know and what they propose first."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.resuming import CONTINUE_KEY, plan_resume
from hpo.search._searchers import OptunaSearcher, RandomSearcher
from tests.resuming import stores


@pytest.fixture
def stopped_experiment(tmp_path: Path):
    return stores.stopped_experiment(tmp_path)


def test_optuna_searcher_knows_the_earlier_trials_and_proposes_the_continued_ones_first(
    stopped_experiment,
):
    store, row, folders = stopped_experiment
    plan = plan_resume(store, row, 8, folders)
    search, base = OptunaSearcher(name="optuna").build(
        stores.space(),
        {"optimizer": {"lr": 1e-3}, "model": {"hidden_size": 8}},
        metric="val_accuracy",
        mode="max",
        seed=0,
        num_samples=8,
        max_concurrent=None,
        warm=plan.warm_start(),
    )
    assert base[CONTINUE_KEY]["trial_id"] is None
    suggested = [search.suggest(f"ray-{i}") for i in range(4)]
    markers = [s.get(CONTINUE_KEY) for s in suggested]
    assert [m["trial_id"] for m in markers[:3]] == ["t3", "t4", "t5"]
    assert suggested[0]["optimizer"]["lr"] == pytest.approx(0.004)
    assert markers[3] is None  # a new trial
    states = [t.state.name for t in search._ot_study.get_trials()]
    assert states[:3] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert search._ot_study.get_trials()[0].intermediate_values == {
        1: pytest.approx(0.501),
        2: pytest.approx(0.502),
        3: pytest.approx(0.503),
        4: pytest.approx(0.504),
    }
    # The new trial is not a repeat of an earlier one.
    earlier = {t["params"]["optimizer.lr"] for t in store.trial_rows(1)}
    assert suggested[3]["optimizer"]["lr"] not in earlier


def test_random_searcher_goes_on_with_the_draws_of_an_uninterrupted_run(stopped_experiment):
    store, row, folders = stopped_experiment
    plan = plan_resume(store, row, 8, folders)
    space = stores.space()
    searcher = RandomSearcher(name="random")
    generator, _ = searcher.build(
        space,
        {},
        metric="m",
        mode="max",
        seed=3,
        num_samples=8,
        max_concurrent=None,
        warm=plan.warm_start(),
    )
    presets = generator._points_to_evaluate
    assert [p[CONTINUE_KEY]["trial_id"] for p in presets[:3]] == ["t3", "t4", "t5"]
    uninterrupted = searcher.preview(space, seed=3, n=8)
    assert [p["optimizer"]["lr"] for p in presets[3:]] == [
        p["optimizer.lr"] for p in uninterrupted[6:]
    ]
