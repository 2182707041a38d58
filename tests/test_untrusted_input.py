"""Untrusted input runs nothing: YAML with Python tags, pickles planted in checkpoints, and
experiment names that would escape the results folder.

Each payload is shown to work where it is loaded unsafely, so that these tests can fail.
"""

import os
from pathlib import Path

import pytest
import ray
import torch
import yaml
from click.testing import CliRunner
from ray import tune

import hpo
from hpo.cli._app import cli
from hpo.errors import SpecError, UnsafeCheckpoint
from hpo.spec._spec import load_spec
from hpo.store import TrialStatus
from hpo.trainable.checkpoint import STATE_FILE, load_checkpoint
from tests.conftest import tiny_spec

pytestmark = pytest.mark.usefixtures("workdir")


# --- YAML with Python tags ------------------------------------------------------------------

YAML_PAYLOADS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:builtins.exec [\"open('{marker}', 'w')\"]",
    "!!python/object/apply:subprocess.check_call [['touch', '{marker}']]",
]


def spec_with(payload: str) -> str:
    return f"name: evil\noptimizer:\n  lr: {payload}\n"


@pytest.mark.parametrize("payload", YAML_PAYLOADS)
def test_the_yaml_payload_works_when_loaded_unsafely(workdir: Path, payload: str):
    marker = workdir / "ran"
    yaml.unsafe_load(spec_with(payload.format(marker=marker)))
    assert marker.exists()


@pytest.mark.parametrize("payload", YAML_PAYLOADS)
def test_a_spec_with_python_tags_is_rejected_and_runs_nothing(workdir: Path, payload: str):
    marker = workdir / "ran"
    path = workdir / "evil.yaml"
    path.write_text(spec_with(payload.format(marker=marker)))

    with pytest.raises(SpecError, match=r"evil.yaml:3: .*no Python tags"):
        load_spec(path)
    with pytest.raises(SpecError, match="no Python tags"):
        load_spec(tiny_spec(), [f"optimizer.lr={payload.format(marker=marker)}"])
    for command in ("validate", "run"):
        result = CliRunner().invoke(cli, [command, str(path)])
        assert result.exit_code == 2, result.output
        assert "no Python tags" in result.output
        assert "Traceback" not in result.output
    result = CliRunner().invoke(
        cli, ["run", str(path), "--set", f"optimizer.lr={payload.format(marker=marker)}"]
    )
    assert result.exit_code == 2

    assert not marker.exists()
    assert not (workdir / "hpo-results").exists()  # nothing was written either


# --- pickles in checkpoints ---------------------------------------------------------------


class Payload:
    """Unpickling this creates `marker`: what a crafted checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def plant(directory: Path, marker: Path) -> Path:
    """Replace the trainer state in `directory` with a crafted pickle."""
    path = directory / STATE_FILE
    torch.save({"epoch": 1, "model": Payload(marker)}, path)
    return path


def test_the_checkpoint_payload_works_when_loaded_unsafely(workdir: Path):
    marker = workdir / "ran"
    torch.load(plant(workdir, marker), weights_only=False)
    assert marker.exists()


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(workdir: Path):
    marker = workdir / "ran"
    plant(workdir, marker)
    with pytest.raises(UnsafeCheckpoint, match="holds objects other than tensors and plain data"):
        load_checkpoint(workdir)
    assert not marker.exists()


class PlantInCheckpoints(tune.Callback):
    """Replaces every checkpoint a trial reports with a crafted pickle, as someone with write
    access to the results folder could; with `crash`, then kills the trial's worker once, so
    that Ray retries the trial from its (planted) checkpoint."""

    def __init__(self, marker: Path, crash: bool):
        self.marker = marker
        self.crash = crash

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        plant(Path(checkpoint.path), self.marker)
        if self.crash:
            self.crash = False
            ray.kill(trial.temporary_state.ray_actor)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_retried_trial_refuses_a_crafted_checkpoint(workdir: Path):
    marker = workdir / "ran"
    spec = tiny_spec(
        name="retried",
        space={},
        training={"epochs": 30, "batch_size": 128},
        checkpoint={"every": 1},
        budget={"num_samples": 1, "max_failures": 1},
        tracking={"tensorboard": False},
    )
    with pytest.raises(hpo.errors.RunFailed, match="UnsafeCheckpoint"):
        hpo.run(spec, callbacks=[PlantInCheckpoints(marker, crash=True)])
    (trial,) = hpo.load("retried").trials().itertuples()
    assert trial.status == TrialStatus.ERROR.value
    assert trial.error_type == "UnsafeCheckpoint"
    assert not marker.exists()


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_the_best_trials_test_evaluation_refuses_a_crafted_checkpoint(workdir: Path):
    marker = workdir / "ran"
    spec = tiny_spec(
        name="evaluated",
        space={},
        data={"name": "digits", "test_fraction": 0.2},
        checkpoint={"every": 1},
        budget={"num_samples": 1},
        tracking={"tensorboard": False},
    )
    with pytest.raises(UnsafeCheckpoint, match="holds objects other than tensors"):
        hpo.run(spec, callbacks=[PlantInCheckpoints(marker, crash=False)])
    assert not marker.exists()
    assert hpo.load("evaluated").status == "COMPLETED"  # the search itself was fine


# --- experiment names ---------------------------------------------------------------------

ESCAPING_NAMES = ["../x", "../../etc/cron.d/x", "/tmp/x", "a/b", "a\\b", "..", ".", "~x", "x/.."]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_names_that_would_escape_the_results_folder_are_spec_errors(name: str):
    with pytest.raises(SpecError, match="cannot be an experiment name"):
        load_spec(tiny_spec(name=name))
    with pytest.raises(SpecError, match="cannot be an experiment name"):
        hpo.run(tiny_spec(), name=name)


def test_name_option_is_checked_like_the_spec(workdir: Path):
    path = workdir / "ok.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(name="ok")))
    for name in ("../escaped", "/tmp/escaped"):
        result = CliRunner().invoke(cli, ["run", str(path), "--name", name])
        assert result.exit_code == 2, result.output
        assert "cannot be an experiment name" in result.output
        assert "Traceback" not in result.output
    assert not (workdir / "hpo-results").exists()
    assert not (workdir.parent / "escaped").exists() and not os.path.exists("/tmp/escaped")
