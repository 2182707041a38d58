"""Each distribution, translated to Ray Tune and to Optuna, samples the same inclusive range."""

import math

import numpy as np
import optuna
import pytest
from pydantic import TypeAdapter, ValidationError

from hpo.space import Distribution, Space, get_path, set_path

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
    ],
)
def test_invalid_distributions(raw, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(raw)


def test_grid_values_and_size():
    space = Space(
        {
            "a": parse({"type": "int", "low": 1, "high": 3}),
            "b": parse({"type": "categorical", "choices": ["x", "y"]}),
            "c": parse({"type": "float", "low": 0.0, "high": 1.0, "step": 0.5}),
        }
    )
    assert space.grid_size() == 3 * 2 * 3
    assert space.dists["c"].values() == [0.0, 0.5, 1.0]
    space.dists["d"] = parse({"type": "float", "low": 0.0, "high": 1.0})
    assert space.grid_size() is None
    assert space.continuous_keys() == ["d"]


def test_ray_param_space_keeps_the_base_and_nests_keys():
    space = Space({"optimizer.lr": parse({"type": "float", "low": 0.1, "high": 1.0})})
    base = {"optimizer": {"name": "adam", "lr": 0.5}, "seed": 1}
    config = space.ray_param_space(base, grid=False)
    assert config["optimizer"]["name"] == "adam" and config["seed"] == 1
    assert hasattr(config["optimizer"]["lr"], "sample")
    assert base["optimizer"]["lr"] == 0.5  # the base is not modified


def test_dotted_paths():
    config: dict = {}
    set_path(config, "a.b.c", 1)
    assert config == {"a": {"b": {"c": 1}}}
    assert get_path(config, "a.b.c") == 1
