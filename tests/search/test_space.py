"""Each distribution, translated to Ray Tune and to Optuna, samples the same inclusive range."""

import math

import numpy as np
import optuna
import pytest
from pydantic import TypeAdapter, ValidationError

from hpo.search._space import Distribution, Space, get_path, nest, set_path

N = 3000
parse = TypeAdapter(Distribution).validate_python


def ray_samples(dist) -> list:
    return list(dist.to_ray().sample(size=N, random_state=np.random.default_rng(0)))


def optuna_samples(dist) -> list:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [study.ask({"x": dist.to_optuna()}).params["x"] for _ in range(N)]


both = pytest.mark.parametrize("sample", [ray_samples, optuna_samples], ids=["ray", "optuna"])


@both
def test_int_bounds_are_inclusive(sample):
    values = sample(parse({"type": "int", "low": 1, "high": 4}))
    assert set(values) == {1, 2, 3, 4}


@both
def test_int_log_bounds_are_inclusive(sample):
    values = sample(parse({"type": "int", "low": 1, "high": 8, "log": True}))
    assert set(values) == set(range(1, 9))
    # log scale: small values are more likely than large ones
    assert values.count(1) > values.count(8)


@both
def test_int_step(sample):
    values = sample(parse({"type": "int", "low": 2, "high": 10, "step": 4}))
    assert set(values) == {2, 6, 10}


@both
def test_float_uniform(sample):
    values = np.array(sample(parse({"type": "float", "low": -1.0, "high": 3.0})))
    assert values.min() >= -1.0 and values.max() <= 3.0
    assert values.min() < -0.9 and values.max() > 2.9
    assert abs(np.median(values) - 1.0) < 0.2


@both
def test_float_log(sample):
    values = np.array(sample(parse({"type": "float", "low": 1e-4, "high": 1.0, "log": True})))
    assert values.min() >= 1e-4 and values.max() <= 1.0
    # log-uniform: the median is the geometric mean of the bounds
    assert abs(math.log10(np.median(values)) - -2.0) < 0.2


@both
def test_float_step_reaches_both_ends(sample):
    values = sample(parse({"type": "float", "low": 0.1, "high": 0.5, "step": 0.1}))
    assert sorted(set(np.round(values, 9))) == [0.1, 0.2, 0.3, 0.4, 0.5]


@both
def test_categorical(sample):
    values = sample(parse({"type": "categorical", "choices": ["a", 2, True]}))
    assert set(values) == {"a", 2, True}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "int", "low": 5, "high": 1}, "`low <= high` must hold, but got (low=5, high=1)"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "a log scale needs `low > 0`"),
        (
            {"type": "float", "low": 0.1, "high": 1.0, "log": True, "step": 0.1},
            "cannot be combined",
        ),
        ({"type": "int", "low": 0, "high": 10, "step": 0}, "`step` must be positive"),
        ({"type": "float", "low": 0.0, "high": 1.0, "step": 0.3}, "multiple of `step`"),
        ({"type": "categorical", "choices": []}, "at least 1 item"),
        ({"type": "categorical", "choices": [1, 1]}, "must be distinct"),
        ({"type": "float", "low": 0.0, "high": 1.0, "scale": 2}, "Extra inputs are not permitted"),
        ({"type": "float", "low": float("nan"), "high": 1.0}, "Input should be a finite number"),
        ({"type": "float", "low": 0.0, "high": float("inf")}, "Input should be a finite number"),
    ],
)
def test_invalid_distributions(raw, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(raw)


def test_grid_points_and_size():
    space = Space(
        {
            "a": parse({"type": "int", "low": 1, "high": 3}),
            "b": parse({"type": "categorical", "choices": ["x", "y"]}),
            "c": parse({"type": "float", "low": 0.0, "high": 1.0, "step": 0.5}),
            "d": parse({"type": "grid", "values": [True, False]}),
            "e": parse(7),  # a bare value is a constant
        }
    )
    assert space.grid_size() == 3 * 2 * 3 * 2
    assert space.dists["c"].points() == [0.0, 0.5, 1.0]
    assert space.dists["e"].type == "constant"
    assert next(space.grid()) == {"a": 1, "b": "x", "c": 0.0, "d": True, "e": 7}
    continuous = Space({**space.dists, "f": parse({"type": "float", "low": 0.0, "high": 1.0})})
    assert continuous.grid_size() is None
    assert continuous.continuous_keys() == ["f"]


CONDITIONAL = {
    "optimizer.momentum": {
        "type": "categorical",
        "choices": [0.5, 0.9],
        "when": {"optimizer.name": "sgd"},
    },
    "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam", "rmsprop"]},
    "optimizer.nesterov": {
        "type": "categorical",
        "choices": [True, False],
        "when": {"optimizer.name": ["sgd"], "optimizer.momentum": 0.9},
    },
}


def conditional_space() -> Space:
    return Space({key: parse(raw) for key, raw in CONDITIONAL.items()})


def test_parents_come_before_children():
    space = conditional_space()
    assert list(space) == ["optimizer.name", "optimizer.momentum", "optimizer.nesterov"]
    assert space.problems == []


def test_conditional_grid_holds_each_active_combination_once():
    points = list(conditional_space().grid())
    assert points == [
        {"optimizer.name": "sgd", "optimizer.momentum": 0.5},
        {"optimizer.name": "sgd", "optimizer.momentum": 0.9, "optimizer.nesterov": True},
        {"optimizer.name": "sgd", "optimizer.momentum": 0.9, "optimizer.nesterov": False},
        {"optimizer.name": "adam"},
        {"optimizer.name": "rmsprop"},
    ]


def test_conditional_random_samples_only_active_parameters():
    space = conditional_space()
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(300)]
    for params in samples:
        assert ("optimizer.momentum" in params) == (params["optimizer.name"] == "sgd")
    assert {p["optimizer.name"] for p in samples} == {"sgd", "adam", "rmsprop"}
    assert any("optimizer.nesterov" in p for p in samples)


def test_conditional_optuna_suggests_only_active_parameters():
    space = conditional_space()
    define = space.optuna_define_by_run()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(60):
        trial = study.ask()
        define(trial)
        params = define.params(trial)
        assert ("optimizer.momentum" in params) == (params["optimizer.name"] == "sgd")
        study.tell(trial, 0.0)


def test_params_of_a_config_are_the_active_ones():
    space = conditional_space()
    config = {"optimizer": {"name": "adam", "momentum": 0.0, "nesterov": False}}
    assert space.params_of(config) == {"optimizer.name": "adam"}


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            {"optimizer.nam": "sgd"},
            "`when` names 'optimizer.nam', which is not a parameter of `space`",
        ),
        ({"optimizer.lr": 0.1}, "`when` needs a categorical parent, but 'optimizer.lr' is float"),
        (
            {"optimizer.name": "sdg"},
            "`when` expects 'optimizer.name' to be 'sdg', which is not among its values",
        ),
    ],
)
def test_impossible_conditions(when, message):
    space = Space(
        {
            "optimizer.name": parse({"type": "categorical", "choices": ["sgd", "adam"]}),
            "optimizer.lr": parse({"type": "float", "low": 0.1, "high": 1.0}),
            "optimizer.momentum": parse({"type": "float", "low": 0.1, "high": 0.9, "when": when}),
        }
    )
    assert next(m for _, m in space.problems).startswith(message)


def test_cycles_are_reported():
    space = Space(
        {
            "a": parse({"type": "categorical", "choices": [1, 2], "when": {"b": 1}}),
            "b": parse({"type": "categorical", "choices": [1, 2], "when": {"a": 1}}),
        }
    )
    assert ("a", "`when` conditions form a cycle") in space.problems


def test_dotted_paths():
    config: dict = {}
    set_path(config, "a.b.c", 1)
    assert config == {"a": {"b": {"c": 1}}}
    assert get_path(config, "a.b.c") == 1
    assert nest({"a.b": 1, "a.c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
