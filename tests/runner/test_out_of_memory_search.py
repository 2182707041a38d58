"""The out-of-memory test of issue 22, on the CPU: a user's model that runs out of memory for
training batches above 32, searched over `training.batch_size: [16, 64]`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from torch import nn

import hpo
from hpo.cli._app import cli
from tests.conftest import tiny_spec
from tests.runner.test_failing_trials import study_trials

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


class RunsOutAbove32(nn.Module):
    """An MLP that raises torch's OutOfMemoryError for a training batch above 32 samples."""

    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs, 16), nn.ReLU(), nn.Linear(16, outputs))

    def forward(self, x):
        if self.training and len(x) > 32:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
        return self.net(x.flatten(1))


def runs_out_above_32(config, input_shape, output_dim):
    return RunsOutAbove32(math.prod(input_shape), output_dim)


def search(workdir: Path, name: str, on_oom: str) -> tuple[int, str, hpo.Experiment]:
    spec = tiny_spec(
        name=name,
        model={"name": "tests.runner.test_out_of_memory_search:runs_out_above_32"},
        training={"epochs": 2, "batch_size": 16, "on_oom": on_oom},
        space={"training.batch_size": {"type": "categorical", "choices": [16, 64]}},
        # Every trial trains, also one that repeats a finished trial's batch size (of two).
        searcher={"name": "optuna", "n_startup_trials": 4, "allow_repeats": True},
        # One at a time, and fail-fast at its most eager: were running out of memory counted
        # as a bug, the first 64 to fail would stop the search.
        budget={"num_samples": 6, "max_concurrent": 1, "fail_fast": 1},
        tracking={"tensorboard": False},
    )
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(cli, ["run", str(path)])
    return result.exit_code, result.output, hpo.load(name)


def test_with_fail_the_64s_fail_out_of_memory_and_the_search_goes_on(workdir: Path):
    code, output, experiment = search(workdir, "oom-fail", "fail")
    assert code == 0, output
    trials = experiment.trials().sort_values("number")
    large = trials["params.training.batch_size"] == 64
    # Both sizes, and a 64 first (before anything succeeded), with this seed.
    assert large.any() and not large.all() and large.iloc[0]
    assert len(trials) == 6 and experiment.status == "COMPLETED"
    assert set(trials.loc[large, "status"]) == {"ERROR"}
    assert set(trials.loc[large, "error_type"]) == {"out_of_memory"}
    for message in trials.loc[large, "error"]:
        assert message.startswith("out of memory in epoch 1, step 1 with batch size 64, peak memory")
        assert "(OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB)" in message
    assert set(trials.loc[~large, "status"]) == {"COMPLETED"}
    assert trials["peak_memory_mb"].notna().all()  # the failed ones' too, from their error

    states = {t.number: t.state.name for t in study_trials(workdir / "hpo-results" / "oom-fail")}
    assert sorted(states.values()) == sorted("FAIL" if x else "COMPLETE" for x in large)

    number = int(trials.loc[large, "number"].iloc[0])
    shown = CliRunner().invoke(cli, ["show", "oom-fail", "--trial", str(number)])
    assert shown.exit_code == 0, shown.output
    assert "failed: out of memory in epoch 1, step 1 with batch size 64" in shown.output
    assert "memory: peak " in shown.output and "1 micro-batch" in shown.output


def test_with_split_every_trial_completes_and_the_64s_train_in_two_pieces(workdir: Path):
    code, output, experiment = search(workdir, "oom-split", "split")
    assert code == 0, output
    trials = experiment.trials()
    large = trials["params.training.batch_size"] == 64
    assert large.any() and not large.all()
    assert set(trials["status"]) == {"COMPLETED"}
    assert trials["error"].isna().all()
    assert set(trials.loc[large, "micro_batches"]) == {2}
    assert set(trials.loc[~large, "micro_batches"]) == {1}
    # The searched batch is what each optimizer step saw.
    assert set(trials.loc[large, "final.effective_batch_size"]) == {64}
    assert set(trials.loc[~large, "final.effective_batch_size"]) == {16}
    assert (trials["peak_memory_mb"] >= 0).all()

    number = int(trials.loc[large, "number"].iloc[0])
    shown = CliRunner().invoke(cli, ["show", "oom-split", "--trial", str(number)])
    assert "2 micro-batches (effective batch 64)" in shown.output, shown.output
    listing = CliRunner().invoke(cli, ["show", "oom-split"])
    assert "peak MB" in listing.output and "micro" in listing.output
