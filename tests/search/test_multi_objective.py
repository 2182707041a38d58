"""Optuna's multi-objective samplers through `searcher:`: Optuna is told every objective and
each trial's constraints, and a resumed run rebuilds the same study from the store's facts."""

from __future__ import annotations

import math

import pytest
from pydantic import TypeAdapter

from hpo.pareto import parse_constraint
from hpo.resuming import WarmStart
from hpo.resuming._plan import FinishedTrial
from hpo.search import Distribution, OptunaSearcher, Space
from hpo.types import Mode, TrialStatus

_FLOAT = {"type": "float", "low": 0, "high": 1}
SPACE = Space({key: TypeAdapter(Distribution).validate_python(_FLOAT) for key in ("x", "y")})
OBJECTIVES = {"f1": Mode.MIN, "f2": Mode.MIN}
CONSTRAINTS = [parse_constraint("f1 <= 0.8")]


def _zdt1(x: float, y: float) -> dict[str, float]:
    g = 1 + 9 * y
    return {"f1": x, "f2": g * (1 - math.sqrt(x / g))}


def _search(sampler: str, warm: WarmStart | None = None, **options):
    searcher = OptunaSearcher(name="optuna", sampler=sampler, **options)
    search, _ = searcher.build(
        SPACE,
        {},
        metric="f1",
        mode=Mode.MIN,
        seed=3,
        num_samples=12,
        max_concurrent=None,
        warm=warm,
        objectives=OBJECTIVES,
        constraints=CONSTRAINTS,
    )
    return search


def _optuna(search):
    """Ray's OptunaSearch inside hpo's wrappers of it (`NoRepeats`)."""
    while hasattr(search, "searcher"):
        search = search.searcher
    return search


def _run(search, n: int, start: int = 0) -> list[tuple[dict, dict]]:
    """Trials one after another, as a run with one trial at a time."""
    done = []
    for i in range(start, start + n):
        config = search.suggest(f"t{i}")
        metrics = _zdt1(config["x"], config["y"])
        search.on_trial_complete(f"t{i}", result=metrics)
        done.append((config, metrics))
    return done


@pytest.mark.parametrize(
    ("sampler", "options"),
    [("nsga2", {"population_size": 4}), ("nsga3", {"population_size": 4}), ("tpe", {}), ("gp", {})],
)
def test_optuna_is_told_every_objective_and_the_constraints(sampler, options):
    if sampler == "gp":
        pytest.importorskip("torch")
    search = _search(sampler, **options)
    done = _run(search, 6)
    study = _optuna(search)._ot_study
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    for trial, (_, metrics) in zip(study.trials, done, strict=True):
        assert trial.values == [metrics["f1"], metrics["f2"]]
        assert trial.constraints == {"f1 <= 0.8": metrics["f1"] - 0.8}


def test_a_resumed_study_is_the_one_the_run_had():
    population = 4
    first = _search("nsga2", population_size=population)
    done = _run(first, 9)
    told = [
        FinishedTrial(f"t{i}", TrialStatus.COMPLETED, config, metrics["f1"], {}, last=metrics)
        for i, (config, metrics) in enumerate(done)
    ]
    again = _search("nsga2", WarmStart(told, [], taken=9, new=3), population_size=population)
    original, rebuilt = _optuna(first)._ot_study.trials, _optuna(again)._ot_study.trials
    assert len(rebuilt) == len(original)
    for a, b in zip(original, rebuilt, strict=True):
        assert (b.state, b.values, b.params, b.distributions) == (
            a.state,
            a.values,
            a.params,
            a.distributions,
        )
        assert b.constraints == a.constraints
        assert (
            b.system_attrs["NSGAIISampler:generation"] == a.system_attrs["NSGAIISampler:generation"]
        )
    # and the resumed search goes on from its front: its next generation has parents
    nxt = again.suggest("t9")
    assert set(nxt) == {"x", "y"}


def test_a_trial_missing_an_objective_fails_in_the_rebuilt_study():
    told = [
        FinishedTrial("t0", TrialStatus.COMPLETED, {"x": 0.5, "y": 0.5}, 0.5, {}, last={"f1": 0.5})
    ]
    again = _search("nsga2", WarmStart(told, [], taken=1, new=1), population_size=4)
    assert _optuna(again)._ot_study.trials[0].state.name == "FAIL"


@pytest.mark.parametrize("sampler", ["nsga2", "nsga3"])
def test_the_genetic_samplers_pickle_and_go_on_the_same(sampler):
    """Ray pickles the searcher when it saves; Optuna's GA samplers hold a lock."""
    import pickle

    search = _search(sampler, population_size=4)
    _run(search, 5)
    copy = pickle.loads(pickle.dumps(search))
    assert copy.suggest("t5") == search.suggest("t5")
    key = "NSGAIISampler:generation" if sampler == "nsga2" else "NSGAIIISampler:generation"
    assert key in _optuna(search)._ot_study.trials[0].system_attrs


def test_rays_optuna_search_still_has_the_map_hpo_sets_constraints_through():
    search = _search("tpe")
    search.suggest("t0")
    assert "t0" in _optuna(search)._ot_trials
