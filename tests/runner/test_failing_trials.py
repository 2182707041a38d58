"""Failing trials: recorded with their error, told to the searcher as failures, and a search
whose first trials all fail the same way stops early (`budget.fail_fast`)."""

import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

import hpo
from hpo.cli._app import cli
from hpo.errors import HpoDeprecationWarning, RunFailed
from hpo.store import TrialStatus
from hpo.trainable.finite import check_finite
from hpo.trainable.loop import Trainer
from tests.conftest import tiny_spec

X = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def diverges_for_large_x(config: dict) -> None:
    """A training function whose loss is NaN for x > 0.6 (a bad configuration)."""
    for epoch in range(1, 3):
        hpo.report({"loss": math.nan if config["x"] > 0.6 else config["x"], "epoch": epoch})


def rejects_large_x(config: dict) -> None:
    """Fails for x > 0.5 with an error that names the configuration."""
    if config["x"] > 0.5:
        raise ValueError(f"x={config['x']:.3f} is too large")
    hpo.report({"loss": config["x"]})


def misspelt_key(config: dict) -> None:
    """A bug: every trial fails the same way."""
    hpo.report({"loss": config["lerning_rate"]})


def study_trials(experiment_dir: Path) -> list:
    """The Optuna trials as Ray's OptunaSearch told them to its study (from its saved state)."""
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch()
    searcher.restore_from_dir(str(experiment_dir))
    return searcher._ot_study.trials


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"loss": math.nan}, "loss became nan in epoch 4"),
        ({"val_loss": 0.5, "train_loss": math.inf}, "train_loss became inf in epoch 4"),
        ({"score": -math.inf}, "score became -inf in epoch 4"),  # the search's metric
        ({"score": 1.0, "val_r2": math.nan}, None),  # another metric may be undefined
        ({"score": 1.0, "loss_is_nan": True, "note": "nan"}, None),  # not numbers
    ],
)
def test_check_finite(metrics: dict, message: str | None):
    if message is None:
        check_finite(metrics, "score", 4)
    else:
        with pytest.raises(FloatingPointError, match=message):
            check_finite(metrics, "score", 4)


class OverflowsWhenEvaluated(torch.nn.Module):
    """Trains normally; its validation outputs overflow, so only the validation loss is NaN."""

    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.linear = torch.nn.Linear(inputs, outputs)

    def forward(self, x):
        out = self.linear(x.flatten(1))
        return out if self.training else out * math.inf


def overflowing_model(config, input_shape, output_dim):
    return OverflowsWhenEvaluated(math.prod(input_shape), output_dim)


def test_a_nan_validation_loss_fails_hpos_trainer(digits, one_torch_thread):
    trainer = Trainer(
        {"model": {"name": f"{__name__}:overflowing_model"}, "training": {"epochs": 2}}, digits
    )
    with pytest.raises(FloatingPointError, match="val_loss became nan in epoch 1; try a lower"):
        trainer.fit_epoch()


pytestmark = pytest.mark.usefixtures("workdir")


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_an_exception_is_recorded_and_the_run_goes_on():
    experiment = hpo.tune(
        rejects_large_x,
        space={"x": {"type": "categorical", "choices": [0.25, 0.75, 0.5]}},
        metric="loss",
        searcher="grid",
    )
    trials = experiment.trials().set_index("params.x")
    assert list(trials["status"]) == ["COMPLETED", "ERROR", "COMPLETED"]
    failed = trials.loc[0.75]
    assert failed["error_type"] == "ValueError"
    assert failed["error"] == "ValueError: x=0.750 is too large"
    (row,) = [
        r
        for r in experiment.store.trial_rows(experiment.row["id"], ["trial_id", "error_traceback"])
        if r["trial_id"] == failed["trial_id"]
    ]
    assert "in rejects_large_x" in row["error_traceback"]
    assert 'raise ValueError(f"x={config' in row["error_traceback"]
    assert experiment.status == "COMPLETED"


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_a_nan_reported_by_a_users_function_fails_the_trial_and_optuna_sees_a_failure(
    workdir: Path,
):
    experiment = hpo.tune(
        diverges_for_large_x,
        space=X,
        metric="loss",
        searcher={"name": "optuna", "n_startup_trials": 2},
        budget__num_samples=4,
    )
    trials = experiment.trials()
    diverged = trials["params.x"] > 0.6
    assert diverged.any() and not diverged.all()  # both kinds, with this seed
    assert set(trials.loc[diverged, "status"]) == {TrialStatus.ERROR.value}
    assert set(trials.loc[diverged, "error"]) == {"FloatingPointError: loss became nan in epoch 1"}
    assert set(trials.loc[~diverged, "status"]) == {TrialStatus.COMPLETED.value}
    assert trials.loc[diverged, "final.loss"].isna().all()  # nothing was reported
    assert not experiment.history()["loss"].isna().any()

    study = study_trials(workdir / "hpo-results" / experiment.name)
    states = {t.params["x"]: t.state.name for t in study}
    assert states == {
        row["params.x"]: "FAIL" if row["params.x"] > 0.6 else "COMPLETE"
        for _, row in trials.iterrows()
    }
    assert all(math.isfinite(t.value) for t in study if t.state.name == "COMPLETE")


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_diverging_trial_of_hpos_trainable_is_a_failure_for_optuna(workdir: Path):
    spec = tiny_spec(
        name="diverging",
        optimizer={"name": "sgd"},
        training={"epochs": 2, "batch_size": 128},
        space={"optimizer.lr": {"type": "categorical", "choices": [1e-2, 1e12]}},
        # Every trial trains, also one that repeats a finished trial's rate (of two).
        searcher={"name": "optuna", "n_startup_trials": 4, "allow_repeats": True},
        budget={"num_samples": 4},
    )
    experiment = hpo.run(spec)
    trials = experiment.trials()
    diverged = trials["params.optimizer.lr"] == 1e12
    assert diverged.any() and not diverged.all()
    # The same config diverges the same way: one reason, naming the layer and the step.
    (reason,) = set(trials.loc[diverged, "error"])
    assert re.match(
        r"FloatingPointError: the gradient of \S+ became nan in epoch 1, step \d+ ", reason
    )
    assert "try a lower optimizer.lr" in reason
    study = study_trials(workdir / "hpo-results" / "diverging")
    assert sorted(t.state.name for t in study) == sorted(
        "FAIL" if lr == 1e12 else "COMPLETE" for lr in trials["params.optimizer.lr"]
    )


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_the_same_error_in_the_first_trials_stops_the_search():
    # The old keywords (`num_samples` for `budget__num_samples`) still work, with a warning.
    with pytest.raises(RunFailed) as info, pytest.warns(HpoDeprecationWarning):
        hpo.tune(misspelt_key, space=X, metric="loss", num_samples=10, max_concurrent=1)
    message = str(info.value)
    assert "stopped early (budget.fail_fast: 3)" in message
    assert message.endswith("looks like a bug in the training code: KeyError: 'lerning_rate'")

    experiment = hpo.load("misspelt_key")
    assert experiment.status == "FAILED"
    trials = experiment.trials()
    failed = trials["status"] == TrialStatus.ERROR.value
    assert list(trials.loc[failed, "error"]) == ["KeyError: 'lerning_rate'"] * 3
    assert len(trials) < 10
    # Trials Ray had started or queued when it stopped are left for `hpo resume`.
    assert set(trials.loc[~failed, "status"]) <= {TrialStatus.INTERRUPTED.value}


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_hpo_run_stops_early_and_exits_1_with_the_error(workdir: Path):
    spec = workdir / "buggy.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "buggy",
                "trainable": f"{misspelt_key.__module__}:misspelt_key",
                "metric": "loss",
                "space": X,
                "budget": {"num_samples": 6, "max_concurrent": 1, "fail_fast": 2},
                "tracking": {"tensorboard": False},
            }
        )
    )
    result = CliRunner().invoke(cli, ["run", str(spec)])
    assert result.exit_code == 1
    assert "stopped early (budget.fail_fast: 2)" in result.output
    assert "KeyError: 'lerning_rate'" in result.output
    assert "Traceback" not in result.output
    assert (hpo.load("buggy").trials()["started_at"].notna()).sum() <= 3

    # The store kept each failure's traceback; `hpo show` says how to see it, and shows it.
    first_failed = int(hpo.load("buggy").trials().dropna(subset=["error"])["number"].min())
    shown = CliRunner().invoke(cli, ["show", "buggy"])
    assert f"Traceback: hpo show buggy --trial {first_failed}" in shown.output
    one = CliRunner().invoke(cli, ["show", "buggy", "--trial", str(first_failed)])
    assert one.exit_code == 0, one.output
    assert "failed: KeyError: 'lerning_rate'" in one.output
    assert 'hpo.report({"loss": config["lerning_rate"]})' in one.output  # the line that broke
    as_json = json.loads(
        CliRunner().invoke(cli, ["show", "buggy", "--trial", str(first_failed), "-f", "json"]).output
    )
    assert as_json["error_type"] == "KeyError" and as_json["history"] == []
    missing = CliRunner().invoke(cli, ["show", "buggy", "--trial", "99"])
    assert missing.exit_code == 2 and "has no trial 99" in missing.output


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize(
    ("function", "fail_fast"),
    [
        (misspelt_key, 0),  # off
        (rejects_large_x, 2),  # errors that name their configuration differ: no bug signature
        (diverges_for_large_x, 2),  # NaN losses are bad configurations
    ],
)
def test_other_failures_use_the_whole_budget(function, fail_fast: int):
    kwargs = dict(space={"x": {"type": "float", "low": 0.7, "high": 1.0}}, metric="loss")
    with pytest.raises(RunFailed, match=r"no trial of .* finished without an error"):
        hpo.tune(
            function,
            budget__num_samples=4,
            budget__max_concurrent=1,
            budget__fail_fast=fail_fast,
            **kwargs,
        )
    trials = hpo.load(function.__name__).trials()
    assert len(trials) == 4
    assert trials["started_at"].notna().all()


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_after_a_fail_fast_stop_the_fixed_code_resumes_the_whole_budget(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
):
    module = workdir / "mytrain_ff.py"
    module.write_text("import hpo\ndef train(config):\n    hpo.report({'loss': config['lr']})\n")
    monkeypatch.syspath_prepend(str(workdir))
    spec = {
        "name": "fixed-later",
        "trainable": "mytrain_ff:train",
        "metric": "loss",
        "space": X,
        "budget": {"num_samples": 4, "max_concurrent": 1, "fail_fast": 2},
        "tracking": {"tensorboard": False},
    }
    with pytest.raises(RunFailed, match="KeyError: 'lr'"):
        hpo.run(spec)
    assert len(hpo.load("fixed-later").trials()) < 4

    module.write_text("import hpo\ndef train(config):\n    hpo.report({'loss': config['x']})\n")
    monkeypatch.delitem(sys.modules, "mytrain_ff")
    experiment = hpo.resume("fixed-later", errored=True)
    trials = experiment.trials()
    assert experiment.status == "COMPLETED"
    assert len(trials) == 4
    assert set(trials["status"]) == {TrialStatus.COMPLETED.value}
