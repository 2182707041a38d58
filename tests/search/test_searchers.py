"""Searchers given a resumed run's warm state: what they know and what they propose first."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter

from hpo.resuming import CONTINUE_KEY, Continuation, Enqueued, FinishedTrial, WarmStart, plan_resume
from hpo.search import Distribution, Space
from hpo.search._searchers import GridSearcher, OptunaSearcher, RandomSearcher
from hpo.store import TrialStatus
from hpo.types import Mode
from tests.resuming import stores

GRID = {
    "optimizer.name": {"type": "grid", "values": ["adam", "sgd"]},
    "model.hidden_size": {"type": "grid", "values": [8, 16, 32]},
}
BUILD = {
    "metric": "val_loss",
    "mode": Mode.MIN,
    "seed": 0,
    "num_samples": 6,
    "max_concurrent": None,
}
# A warm start as a resumed run's plan gives it: one trial to go on, three proposals made.
CONTINUED = Continuation("t1", 1, "/runs/g/trial_t1/checkpoint_000001", 1, 1)
WARM = WarmStart(
    told=[
        FinishedTrial("t0", TrialStatus.COMPLETED, {"optimizer.name": "adam"}, 0.3, {1: 0.3}),
        FinishedTrial("t2", TrialStatus.ERROR, {"optimizer.name": "adam"}, None, {}),
    ],
    enqueued=[Enqueued({"optimizer.name": "adam", "model.hidden_size": 16}, CONTINUED)],
    taken=3,
    new=2,
)


def _grid() -> Space:
    return Space({key: TypeAdapter(Distribution).validate_python(raw) for key, raw in GRID.items()})


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
        mode=Mode.MAX,
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
    states = [t.state.name for t in _study(search).get_trials()]
    assert states[:3] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert _study(search).get_trials()[0].intermediate_values == {
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
        mode=Mode.MAX,
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


def test_grid_searcher_goes_on_with_the_grid_after_the_continued_trial():
    space = _grid()
    generator, base = GridSearcher(name="grid").build(space, {}, warm=WARM, **BUILD)
    presets = generator._points_to_evaluate
    assert presets[0] == {
        "optimizer": {"name": "adam"},
        "model": {"hidden_size": 16},
        CONTINUE_KEY: CONTINUED.to_config(),
    }
    grid = list(space.grid())
    assert [p["model"]["hidden_size"] for p in presets[1:]] == [
        grid[3]["model.hidden_size"],
        grid[4]["model.hidden_size"],
    ]
    assert all(CONTINUE_KEY not in p for p in presets[1:])  # new: the base's empty marker
    assert base[CONTINUE_KEY]["trial_id"] is None
    assert base["optimizer"]["name"] == "adam"  # a value at every searched key


@pytest.mark.parametrize(
    "searcher",
    [GridSearcher(name="grid"), RandomSearcher(name="random"), OptunaSearcher(name="optuna")],
)
def test_a_run_that_is_not_resumed_has_no_marker(searcher):
    space = _grid() if isinstance(searcher, GridSearcher) else stores.space()
    built, base = searcher.build(space, {}, **BUILD)
    assert CONTINUE_KEY not in base
    for preset in getattr(built, "_points_to_evaluate", None) or []:
        assert CONTINUE_KEY not in preset


def test_optuna_searcher_tells_its_study_the_warm_starts_trials_and_enqueues_the_rest():
    search, base = OptunaSearcher(name="optuna").build(_optuna_space(), {}, warm=WARM, **BUILD)
    told = _study(search).get_trials()
    assert [(t.state.name, t.value, t.params) for t in told[:2]] == [
        ("COMPLETE", 0.3, {"optimizer/name": "adam"}),
        ("FAIL", None, {"optimizer/name": "adam"}),
    ]
    first, second = search.suggest("ray-0"), search.suggest("ray-1")
    assert first[CONTINUE_KEY] == CONTINUED.to_config()
    assert first["model"]["hidden_size"] == 16
    assert CONTINUE_KEY not in second  # a new trial: the base config's empty marker stays
    assert base[CONTINUE_KEY]["trial_id"] is None


def _optuna_space() -> Space:
    raw = {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "model.hidden_size": {"type": "int", "low": 8, "high": 32},
    }
    return Space({key: TypeAdapter(Distribution).validate_python(v) for key, v in raw.items()})


def _study(search):
    """The Optuna study inside hpo's wrappers of Ray's OptunaSearch (`NoRepeats`)."""
    while hasattr(search, "searcher"):
        search = search.searcher
    return search._ot_study
