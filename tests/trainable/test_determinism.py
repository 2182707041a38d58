"""Issue 22, section 4: `training.deterministic`, and bit-identical reruns and resumes on CPU.

The pipeline below has everything that draws random numbers in a real job: a torch Dataset
whose augmentation draws from numpy's and Python's global generators (in the DataLoader's
worker processes, or in the trial's own with no workers), dropout, batch norm, a shuffled
order and AdamW. Two runs of one config must give the same weights bit for bit, and so must
a run stopped after two epochs, saved to disk and continued in a fresh pipeline.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import Dataset as TorchDataset

from hpo.trainable.checkpoint import load_checkpoint, save_checkpoint
from hpo.trainable.config import TrainableConfig
from hpo.trainable.determinism import CUBLAS_WORKSPACE_CONFIG, set_determinism
from hpo.trainable.pipeline import Pipeline
from hpo.trainable.seeding import trial_seed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class NoisyImages(TorchDataset):
    """Fixed 1x6x6 "images" of 3 classes; each read adds noise from numpy's global generator
    and flips from Python's: different on every read, repeatable only if they are seeded."""

    def __init__(self, n: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.targets = torch.randint(0, 3, (n,), generator=generator)
        self.x = torch.randn(n, 1, 6, 6, generator=generator) + self.targets[:, None, None, None]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.from_numpy(np.random.normal(0, 0.3, (1, 6, 6)).astype(np.float32))
        x = self.x[i] + noise
        if random.random() < 0.5:
            x = x.flip(-1)
        return x, self.targets[i]


class NoisyPipeline(Pipeline):
    def setup_data(self) -> None:
        self.train_dataset, self.val_dataset = NoisyImages(96, 1), NoisyImages(48, 2)

    def setup_model(self) -> None:
        self.model = nn.Sequential(
            nn.Conv2d(1, 4, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Flatten(),
            nn.Linear(4 * 4 * 4, 3),
        )


def _config(workers: int, **training: Any) -> dict[str, Any]:
    return {
        "data": {"name": "tests:unused", "num_classes": 3},
        "loader": {"num_workers": workers},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "lr_scheduler": {"name": "cosine"},
        "training": {"epochs": 4, "batch_size": 16, "deterministic": True, **training},
    }


@pytest.fixture(autouse=True)
def _restore_torch_switches(monkeypatch: pytest.MonkeyPatch):
    """The switches are process-wide: leave them, and the cuBLAS variable, as they were."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[1:]


def _weights(pipeline: Pipeline) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in pipeline.model.state_dict().items()}


# Measurements of the machine, not of the training: they differ between two identical runs.
_MEASURED = {"epoch_time_s", "peak_memory_mb", "inference_ms"}


def _without_time(epochs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k not in _MEASURED} for m in epochs]


def _assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"weights differ in {differing}"


def test_deterministic_switches_torch_cudnn_and_cublas_and_off_switches_them_back():
    set_determinism(True, torch.device("cpu"))
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE_CONFIG
    # Off, a worker's next trial does not inherit them; benchmark is on for CUDA only.
    set_determinism(False, torch.device("cuda"))
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark
    set_determinism(False, torch.device("cpu"))
    assert not torch.backends.cudnn.benchmark


def test_a_users_own_cublas_workspace_is_kept(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    set_determinism(True, torch.device("cpu"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_the_pipeline_sets_them_from_the_config_as_it_starts():
    NoisyPipeline(_config(0))
    assert torch.are_deterministic_algorithms_enabled()
    NoisyPipeline(_config(0, deterministic=False))
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "two-workers"])
def test_two_runs_of_one_config_give_bit_identical_weights_and_metrics(workers: int):
    runs = []
    for _ in range(2):
        pipeline = NoisyPipeline(_config(workers))
        runs.append((list(pipeline.run()), _weights(pipeline)))
        # What else the process does in between must not matter.
        np.random.rand(7), random.random(), torch.rand(3)
    (first, first_weights), (second, second_weights) = runs
    _assert_bit_identical(first_weights, second_weights)
    assert _without_time(first) == _without_time(second)
    # The check can fail: another seed trains other weights.
    reseeded = NoisyPipeline({**_config(workers), "seed": 1})
    list(reseeded.run())
    assert not torch.equal(reseeded.model[0].weight, first_weights["0.weight"])


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "two-workers"])
def test_a_trial_resumed_from_a_checkpoint_gives_bit_identical_weights_and_metrics(
    workers: int, tmp_path
):
    uninterrupted = NoisyPipeline(_config(workers))
    expected = list(uninterrupted.run())

    first = NoisyPipeline(_config(workers))
    head = [first.fit_epoch() for _ in range(2)]
    save_checkpoint(first.state_dict(), tmp_path)
    del first
    # Another process would start afresh: disturb every global generator in between.
    np.random.seed(123), random.seed(123), torch.manual_seed(123)
    resumed = NoisyPipeline(_config(workers))
    resumed.load_state_dict(load_checkpoint(tmp_path))
    tail = list(resumed.run())

    _assert_bit_identical(_weights(uninterrupted), _weights(resumed))
    assert _without_time(head + tail) == _without_time(expected)


def test_deterministic_refuses_persistent_workers_which_a_resume_cannot_repeat():
    config = _config(2)
    config["loader"]["persistent_workers"] = True
    with pytest.raises(ValidationError, match=r"set loader\.persistent_workers: false"):
        TrainableConfig.model_validate(config)
    config["training"]["deterministic"] = False
    TrainableConfig.model_validate(config)  # allowed: not promised to repeat


def test_the_switches_keep_old_trials_seeds_and_anomaly_mode_never_changes_one():
    base = TrainableConfig()
    assert trial_seed(base) == trial_seed(TrainableConfig(training={"detect_anomaly": True}))
    # Deterministic algorithms train differently on a GPU: another trial, another seed.
    assert trial_seed(base) != trial_seed(TrainableConfig(training={"deterministic": True}))
