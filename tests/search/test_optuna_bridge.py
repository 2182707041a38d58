"""Stored trials as Optuna trials: the one translation that export, importances and resume use."""

from __future__ import annotations

import math

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from pydantic import TypeAdapter

from hpo.search import (
    Distribution,
    optuna_distributions,
    optuna_params,
    optuna_study,
    optuna_trial,
)
from hpo.types import TrialStatus

SPACE = {
    "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
    "optimizer.momentum": {
        "type": "float",
        "low": 0.5,
        "high": 0.9,
        "when": {"optimizer.name": "sgd"},
    },
    "model.depth": 3,  # a constant: nothing to search
}
DISTS = optuna_distributions(SPACE)
PARAMS = {"optimizer.name": "sgd", "optimizer.momentum": 0.6, "model.depth": 3}


def test_distributions_are_the_searched_keys_from_a_stored_spec_or_a_parsed_space():
    assert {
        "optimizer.name": CategoricalDistribution(["adam", "sgd"]),
        "optimizer.momentum": FloatDistribution(0.5, 0.9),
    } == DISTS
    parsed = {key: TypeAdapter(Distribution).validate_python(raw) for key, raw in SPACE.items()}
    assert optuna_distributions(parsed) == DISTS


@pytest.mark.parametrize(
    ("status", "value", "pruned_as_complete", "state", "kept"),
    [
        (TrialStatus.COMPLETED, 0.3, False, "COMPLETE", 0.3),
        (TrialStatus.COMPLETED, None, False, "FAIL", None),  # ended without a usable value
        (TrialStatus.COMPLETED, math.nan, False, "FAIL", None),
        (TrialStatus.PRUNED, 0.4, False, "PRUNED", None),
        # As Ray's OptunaSearch tells its study of a trial the scheduler stopped.
        (TrialStatus.PRUNED, 0.4, True, "COMPLETE", 0.4),
        (TrialStatus.PRUNED, None, True, "FAIL", None),
        (TrialStatus.ERROR, 0.5, False, "FAIL", None),
        ("ERROR", 0.5, True, "FAIL", None),  # a store row's status
    ],
)
def test_states_and_values(status, value, pruned_as_complete, state, kept):
    trial = optuna_trial(status, value, PARAMS, DISTS, pruned_as_complete=pruned_as_complete)
    assert (trial.state.name, trial.value) == (state, kept)


@pytest.mark.parametrize(
    "status", [TrialStatus.RUNNING, TrialStatus.PENDING, TrialStatus.INTERRUPTED]
)
def test_a_trial_that_has_not_finished_is_not_an_optuna_trial(status):
    assert optuna_trial(status, 0.3, PARAMS, DISTS) is None


def test_params_are_the_searched_ones_by_dotted_key_or_as_ray_names_them():
    trial = optuna_trial(
        TrialStatus.COMPLETED,
        0.3,
        PARAMS,
        DISTS,
        {1: 0.5, 2: math.nan, 3: 0.3},
        user_attrs={"hpo_trial_id": "t0"},
    )
    assert trial.params == {"optimizer.name": "sgd", "optimizer.momentum": 0.6}
    assert set(trial.distributions) == {"optimizer.name", "optimizer.momentum"}
    assert trial.intermediate_values == {1: 0.5, 3: 0.3}  # NaN: nothing Optuna can rank
    assert trial.user_attrs == {"hpo_trial_id": "t0"}
    ray_named = optuna_trial(TrialStatus.COMPLETED, 0.3, PARAMS, DISTS, optuna_names=True)
    assert ray_named.params == {"optimizer/name": "sgd", "optimizer/momentum": 0.6}
    assert set(ray_named.distributions) == set(ray_named.params)
    assert optuna_params({"optimizer.name": "adam"}, DISTS, optuna_names=True) == {
        "optimizer/name": "adam"
    }


@pytest.mark.parametrize(("mode", "direction"), [("min", "MINIMIZE"), ("max", "MAXIMIZE")])
def test_a_study_optimises_the_modes_way(mode, direction):
    assert optuna_study(mode).direction.name == direction


@pytest.fixture
def optuna_verbose():
    """Optuna at INFO, as a user's process may have it, and as it was after the test."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    yield
    optuna.logging.set_verbosity(before)


@pytest.mark.usefixtures("optuna_verbose")
def test_hpo_quiets_optuna_only_while_it_works():
    import optuna

    from hpo.search import Space, quiet_optuna
    from hpo.search._searchers import OptunaSearcher

    with quiet_optuna():
        assert optuna.logging.get_verbosity() == optuna.logging.WARNING
    assert optuna.logging.get_verbosity() == optuna.logging.INFO
    optuna_study("min")
    assert optuna.logging.get_verbosity() == optuna.logging.INFO
    lr = {"type": "float", "low": 0.1, "high": 1.0}
    space = Space({"optimizer.lr": TypeAdapter(Distribution).validate_python(lr)})
    OptunaSearcher(name="optuna").preview(space, seed=0, n=2)
    assert optuna.logging.get_verbosity() == optuna.logging.INFO
