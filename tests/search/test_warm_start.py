"""Warm start, enqueue and no repeats: the spec's checks, the store read, the searchers."""

from pathlib import Path

import pytest

import hpo
from hpo.errors import SpecError
from hpo.resuming import FinishedTrial, Prior, fresh
from hpo.search import CategoricalDist, FloatDist, GridSearcher, IntDist, OptunaSearcher, Space
from hpo.search._no_repeats import NoRepeats
from hpo.search._prior import WarmStartOptions, gather_prior, warm_start_problems
from hpo.spec import check_stored, load_spec
from hpo.store import Store, TrialStatus
from hpo.types import Mode

pytestmark = pytest.mark.usefixtures("workdir")


def _space() -> Space:
    return Space(
        {
            "x": IntDist(type="int", low=0, high=3),
            "y": CategoricalDist(type="categorical", choices=["a", "b"]),
        }
    )


def _spec_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "warm.yaml"
    path.write_text(body)
    return path


_FN = """
trainable: tests.search.test_warm_start:objective
metric: loss
config: {x: 0, y: a}
space:
  x: {type: int, low: 0, high: 3}
  y: {type: categorical, choices: [a, b]}
"""


def objective(config: dict) -> None:
    hpo.report({"loss": float(config["x"]) + (0.5 if config["y"] == "b" else 0.0)})


def test_an_empty_spec_file_is_an_error(tmp_path: Path):
    with pytest.raises(SpecError, match="the spec is empty"):
        load_spec(_spec_file(tmp_path, "\n# nothing here\n"))


def test_an_enqueued_config_outside_the_space_is_reported_at_its_key_and_line(tmp_path: Path):
    body = _FN + "enqueue:\n  - {x: 1, y: a}\n  - {x: 7, y: b}\n  - {x: 1, z: 2}\n"
    with pytest.raises(SpecError) as caught:
        load_spec(_spec_file(tmp_path, body))
    issues = {issue.key: issue for issue in caught.value.issues}
    assert issues["enqueue.1.x"].line == 10
    assert "7 is outside x's range [0, 3]" in issues["enqueue.1.x"].message
    assert "'z' is not a parameter of `space`" in issues["enqueue.2.z"].message
    assert "enqueue.0" not in " ".join(issues)


def test_warm_start_from_an_unknown_experiment_lists_the_stored_ones(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    store = Store(url)
    store.create_experiment(
        "lr-study",
        {
            "metric": "loss",
            "mode": "min",
            "searcher": {"name": "random"},
            "scheduler": {"name": "fifo"},
            "seed": 0,
            "num_trials": 1,
        },
        storage_path=".",
    )
    body = _FN + "warm_start:\n  from: [lr-study, lr-stduy]\n"
    spec = load_spec(_spec_file(tmp_path, body))
    with pytest.raises(SpecError) as caught:
        check_stored(spec, url)
    (issue,) = caught.value.issues
    assert issue.key == "warm_start.from.1"
    assert issue.line == 9
    assert "no experiment 'lr-stduy'" in issue.message and "it has: lr-study" in issue.message
    assert warm_start_problems(spec.warm_start, f"sqlite:///{tmp_path / 'none.db'}")


def _stored_experiment(store: Store, name: str, trials: list[tuple[dict, float]]) -> None:
    experiment_id, _ = store.create_experiment(
        name,
        {
            "metric": "loss",
            "mode": "min",
            "searcher": {"name": "random"},
            "scheduler": {"name": "fifo"},
            "seed": 0,
            "num_trials": len(trials),
        },
        storage_path=str(store.url),
    )
    from hpo.store import now

    rows = [
        {
            "experiment_id": experiment_id,
            "trial_id": f"t{i}",
            "number": i,
            "status": TrialStatus.COMPLETED.value,
            "params": params,
            "config": params,
            "value": value,
            "best_value": value,
            "iterations": 1,
        }
        for i, (params, value) in enumerate(trials)
    ]
    results = [
        {
            "experiment_id": experiment_id,
            "trial_id": f"t{i}",
            "iteration": 1,
            "metrics": {"loss": v},
            "reported_at": now(),
        }
        for i, (_, v) in enumerate(trials)
    ]
    store.write(rows, results)


def test_gather_tells_the_trials_that_fit_and_enqueues_the_best(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'hpo.db'}")
    _stored_experiment(
        store,
        "old",
        [
            ({"x": 2, "y": "a"}, 0.2),
            ({"x": 9, "y": "a"}, 0.0),  # outside the new bounds
            ({"x": 1, "y": "b", "gone": 3}, 0.1),  # a key no longer searched: dropped
            ({"x": 3}, 0.5),  # y missing: does not fit
        ],
    )
    prior = gather_prior(
        store,
        WarmStartOptions(**{"from": ["old"], "best": 1}),
        [{"x": 0, "y": "a"}],
        _space(),
        "loss",
        Mode.MIN,
    )
    assert prior.notes == [
        "enqueued 1 hand-picked configs",
        "told 2 of 4 trials of old; 2 fell outside the space",
        "enqueued the 1 best configs of old (1 asked)",
    ]
    assert [t.params for t in prior.told] == [{"x": 2, "y": "a"}, {"x": 1, "y": "b"}]
    assert prior.first == [{"x": 0, "y": "a"}, {"x": 1, "y": "b"}]


def test_grid_runs_the_enqueued_configs_first_and_once():
    space = _space()
    warm = fresh(Prior(first=[{"x": 3, "y": "b"}]), 8)
    search, _ = GridSearcher(name="grid").build(
        space,
        {},
        metric="loss",
        mode=Mode.MIN,
        seed=0,
        num_samples=8,
        max_concurrent=None,
        warm=warm,
    )
    points = [(p["x"], p["y"]) for p in search._points_to_evaluate]
    assert points[0] == (3, "b")
    assert len(points) == 8 and len(set(points)) == 8


def test_optuna_is_told_the_prior_trials_and_proposes_the_enqueued_first():
    told = [FinishedTrial("old/t0", TrialStatus.COMPLETED, {"x": 2, "y": "a"}, 0.2, {1: 0.2})]
    warm = fresh(Prior(told=told, first=[{"x": 1, "y": "b"}]), 4)
    search, base = OptunaSearcher(name="optuna").build(
        _space(),
        {},
        metric="loss",
        mode=Mode.MIN,
        seed=0,
        num_samples=4,
        max_concurrent=None,
        warm=warm,
    )
    assert "__hpo_continue__" not in str(base)  # a new experiment: no resume marker
    search.set_search_properties("loss", "min", {})
    assert search.suggest("r0") == {"x": 1, "y": "b"}
    study = search.searcher._ot_study
    assert [t.value for t in study.get_trials() if t.state.name == "COMPLETE"] == [0.2]


def test_constant_liar_is_on_when_trials_run_at_once_unless_turned_off():
    def liar(options: OptunaSearcher, concurrent: int | None) -> bool:
        return options._study_sampler(0, concurrent)._constant_liar

    assert liar(OptunaSearcher(name="optuna"), None)
    assert liar(OptunaSearcher(name="optuna"), 8)
    assert not liar(OptunaSearcher(name="optuna"), 1)
    assert not liar(OptunaSearcher(name="optuna", constant_liar=False), 8)
    with pytest.raises(ValueError, match="constant_liar does not apply to sampler 'random'"):
        OptunaSearcher(name="optuna", sampler="random", constant_liar=True)
    OptunaSearcher(name="optuna", sampler="random", allow_repeats=True)  # every sampler's


def _sampler(seed: int):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


@pytest.mark.parametrize("seed", range(8))  # in some, a repeat comes before a new config
def test_no_repeats_answers_a_repeated_suggestion_from_the_result_and_counts_it(seed):
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    space = Space({"x": IntDist(type="int", low=0, high=1)})
    inner = OptunaSearch(
        space.optuna_define_by_run(), metric="loss", mode="min", sampler=_sampler(seed)
    )
    repeats = []
    search = NoRepeats(inner, space, budget=6, on_repeat=repeats.append)
    trained = []
    for i in range(6):
        config = search.suggest(f"r{i}")
        if config == Searcher.FINISHED:
            break
        trained.append(config["x"])
        search.on_trial_complete(f"r{i}", {"loss": float(config["x"])})
    assert sorted(trained) == [0, 1]  # two points: every other suggestion is a repeat
    assert search.proposed == 6 and len(repeats) == 4
    assert {r.params["x"] for r in repeats} <= {0, 1}
    finished = [t for t in inner._ot_study.get_trials() if t.state.name == "COMPLETE"]
    assert len(finished) == 6  # the repeats were told their original's result
    assert [t.value for t in finished].count(1.0) >= 1  # each trained config told its own


def test_a_suggestion_that_repeats_a_running_trial_waits_for_its_result():
    from ray.tune.search.optuna import OptunaSearch

    space = Space({"x": CategoricalDist(type="categorical", choices=[5])})
    space_f = Space({"x": FloatDist(type="float", low=0, high=1)})
    assert space_f.fit({"x": 2.0}) is None and space_f.fit({"x": 0.5}) == {"x": 0.5}
    inner = OptunaSearch(space.optuna_define_by_run(), metric="loss", mode="min")
    repeats = []
    search = NoRepeats(inner, space, budget=3, on_repeat=repeats.append)
    assert search.suggest("r0") == {"x": 5}
    assert search.suggest("r1") == "FINISHED"  # the other two repeat r0, still running
    assert [r.of for r in repeats] == ["r0", "r0"]
    search.on_trial_complete("r0", {"loss": 1.0})
    assert [t.value for t in inner._ot_study.get_trials()] == [1.0, 1.0, 1.0]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_tpe_with_8_at_once_on_32_points_trains_no_config_twice(capsys):
    experiment = hpo.tune(
        grid_objective,
        space={
            "a": {"type": "categorical", "choices": [0, 1, 2, 3]},
            "b": {"type": "categorical", "choices": [0, 1, 2, 3, 4, 5, 6, 7]},
        },
        metric="loss",
        mode="min",
        searcher={"name": "optuna", "n_startup_trials": 4},
        budget={"num_samples": 32, "max_concurrent": 8},
        resources={"cpu": 0.25},
    )
    trials = experiment.trials()
    assert len(trials) == 32
    trained = trials[trials["repeat_of"].isna()]
    configs = [(row["params.a"], row["params.b"]) for _, row in trained.iterrows()]
    assert len(configs) == len(set(configs))
    repeats = trials[trials["repeat_of"].notna()]
    for _, row in repeats.iterrows():
        original = trials[trials["number"] == row["repeat_of"]].iloc[0]
        assert (original["params.a"], original["params.b"]) == (row["params.a"], row["params.b"])
        assert pd_isna(original["repeat_of"])
    if not repeats.empty:
        from hpo.cli import main

        capsys.readouterr()
        assert main(["show", experiment.name]) == 0
        assert "repeat of" in capsys.readouterr().out


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def grid_objective(config: dict) -> None:
    hpo.report({"loss": (config["a"] - 2) ** 2 + (config["b"] - 5) ** 2 / 4})


def test_a_resumed_run_does_not_propose_the_enqueued_configs_again():
    from hpo.resuming import WarmStart

    first = [{"x": 1, "y": "b"}, {"x": 2, "y": "b"}, {"x": 3, "y": "b"}]
    done = [
        FinishedTrial(f"t{i}", TrialStatus.COMPLETED, p, 0.1 * i, {1: 0.1 * i}, i)
        for i, p in enumerate(first[:2])
    ]
    warm = WarmStart(done, [], 2, 2, Prior(first=first))
    assert warm.first() == first[2:]
    repeats = []
    search, _ = OptunaSearcher(name="optuna").build(
        _space(),
        {},
        metric="loss",
        mode=Mode.MIN,
        seed=0,
        num_samples=4,
        max_concurrent=None,
        warm=warm,
        on_repeat=repeats.append,
    )
    search.set_search_properties("loss", "min", {})
    assert search.suggest("r0") == {"x": 3, "y": "b"}  # the one not yet run
    # The last of the budget: a new config, or a repeat of an earlier run's trial, which is
    # answered from it (and counts), never trained.
    second = search.suggest("r1")
    if second == "FINISHED":
        assert [r.earlier.trial_id for r in repeats] in (["t0"], ["t1"])
    else:
        assert (second["x"], second["y"]) not in {(1, "b"), (2, "b")}


def test_an_empty_space_runs_the_base_config_once_or_repeated_with_other_seeds():
    from hpo.search import RandomSearcher

    spec = load_spec({"name": "plain", "data": {"name": "digits"}})
    assert spec.num_trials() == 1
    spec = load_spec({"name": "plain", "data": {"name": "digits"}, "budget": {"num_samples": 3}})
    assert spec.num_trials() == 3
    for searcher in (RandomSearcher(name="random"), OptunaSearcher(name="optuna")):
        search, _ = searcher.build(
            spec.search_space(),
            spec.base_config(),
            metric="val_loss",
            mode=Mode.MIN,
            seed=0,
            num_samples=3,
            max_concurrent=None,
        )
        assert [p["seed"] for p in search._points_to_evaluate] == [0, 1, 2]
