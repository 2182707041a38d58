"""The range test through a trial's Pipeline: on the quickstart's MLP and on a subclass."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from hpo.spec import load_spec
from hpo.trainable.lr_find import find_lr
from hpo.trainable.pipeline import Pipeline
from hpo.trainable.preflight import load_data
from tests.conftest import SEARCH_SPACES


@pytest.fixture(scope="module")
def digits():
    spec = load_spec(SEARCH_SPACES / "digits_mlp.yaml")
    return spec.base_config(), load_data(spec)


def test_the_digits_curve_falls_then_rises_and_stops_at_divergence(digits):
    config, dataset = digits
    result = find_lr(config, dataset=dataset)
    assert result.stopped == "diverged"
    assert 20 < len(result.lrs) < 100  # the loader (23 batches) was cycled past one epoch
    ratios = np.diff(np.log10(result.lrs))
    assert ratios == pytest.approx(np.full(len(ratios), 8 / 99))  # exponential: 1e-7..10
    start = float(np.median(result.losses[:10]))
    assert start == pytest.approx(math.log(10), abs=0.2)  # chance level of 10 classes
    assert min(result.losses) < 0.5 * start  # it trained: a real optimizer step, not flat
    assert result.smoothed[-1] > 4 * min(result.smoothed)
    found = result.suggestions()
    assert 1e-4 <= found.valley.lr <= 3e-2 and 1e-4 <= found.steepest.lr <= 3e-2
    assert found.low < found.high <= found.minimum_lr


def test_the_callers_random_state_is_left_as_it_was(digits):
    config, dataset = digits
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    find_lr(config, dataset=dataset, steps=20)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_it_is_isolated_and_repeatable_and_leaves_a_trials_model_as_it_was(digits):
    """Fresh model and data order each time: the same curve twice, and a trial built after
    it starts from the weights it would have had anyway (the dataset is not changed)."""
    config, dataset = digits
    before = Pipeline(config, dataset).model.state_dict()
    first = find_lr(config, dataset=dataset, steps=30)
    second = find_lr(config, dataset=dataset, steps=30)
    assert first.losses == second.losses
    after = Pipeline(config, dataset).model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_pipelines_lr_schedule_does_not_move_the_ramp(digits):
    """A one-cycle schedule steps per batch and refuses to step past its plan: the ramp
    sets every rate itself."""
    config, dataset = digits
    config = {**config, "lr_scheduler": {"name": "onecycle"}, "training": {"epochs": 1}}
    result = find_lr(config, dataset=dataset, min_lr=1e-5, max_lr=1e-1, steps=40)
    assert len(result.lrs) > 23  # past the schedule's one planned epoch
    assert result.lrs[0] == pytest.approx(1e-5)


def test_accumulated_batches_make_one_step_each(digits):
    config, dataset = digits
    config = {**config, "training": {**config["training"], "accumulate_batches": 4}}
    result = find_lr(config, dataset=dataset, steps=12, max_lr=1e-2)
    assert len(result.lrs) == 12 and result.stopped == "max_lr"


class Blobs(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.targets = torch.randint(0, 3, (n,), generator=generator)
        self.x = torch.randn(n, 4, generator=generator) + 2.0 * self.targets[:, None]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.x[i], self.targets[i]


class BlobsPipeline(Pipeline):
    """Its own data, model and training step count; hpo's optimizer, loss and loop."""

    steps_taken = 0

    def setup_data(self) -> None:
        self.train_dataset = Blobs(512, seed=1)
        self.val_dataset = Blobs(64, seed=2)

    def setup_model(self) -> None:
        self.model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))

    def train_epoch(self, epoch: int) -> dict[str, float]:
        type(self).steps_taken += len(self.train_loader)
        return super().train_epoch(epoch)


SUBCLASS_CONFIG = {
    "training": {"epochs": 3, "batch_size": 32},
    "optimizer": {"name": "sgd", "lr": 0.01},
    "data": {"name": "tests:unused", "num_classes": 3},
}


def test_a_pipeline_subclass_runs_through_its_own_train_epoch():
    BlobsPipeline.steps_taken = 0
    result = find_lr(SUBCLASS_CONFIG, pipeline=BlobsPipeline, steps=60)
    assert BlobsPipeline.steps_taken >= len(result.lrs) > 16  # cycled its 16 batches
    assert min(result.losses) < 0.5 * result.losses[0]
    result.suggestions()  # a curve that falls gives both


class FrozenPipeline(BlobsPipeline):
    def setup_optimizer(self) -> None:
        super().setup_optimizer()
        # A bug of the kind Lightning-AI/pytorch-lightning#2814 hid: the optimizer holds
        # parameters, but not the model's.
        self.optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)


def test_steps_that_leave_the_model_unchanged_are_an_error_not_a_flat_curve():
    with pytest.raises(RuntimeError, match="left the model's parameters as they were"):
        find_lr(SUBCLASS_CONFIG, pipeline=FrozenPipeline, steps=20)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_lr": 1.0, "max_lr": 0.1}, "min_lr < max_lr"),
        ({"steps": 1}, "steps must be at least 2"),
        ({"smoothing": 1.0}, "smoothing must be in"),
        ({"diverge": 1.0}, "diverge must be above 1"),
    ],
)
def test_bad_arguments_say_what_was_expected(options, message):
    with pytest.raises(ValueError, match=message):
        find_lr(SUBCLASS_CONFIG, pipeline=BlobsPipeline, **options)
