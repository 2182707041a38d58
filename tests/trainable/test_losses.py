"""Every loss is torch's own functional form with the section's options; names and tasks are
checked at the `loss` key before any trial."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hpo.trainable.config import LossConfig, TrainableConfig
from hpo.trainable.data import Task
from hpo.trainable.losses import LOSSES, build_loss, output_size

torch.manual_seed(0)
LOGITS = torch.randn(16, 4)
LABELS = torch.randint(0, 4, (16,))
ONE_LOGIT = torch.randn(16, 1)
BINARY = torch.randint(0, 2, (16,))
MULTI = torch.randint(0, 2, (16, 4)).float()
PRED = torch.randn(16, 1)
TARGET = torch.randn(16)

CASES = [
    # (config, task, outputs, targets, torch's own)
    ({}, Task.CLASSIFICATION, LOGITS, LABELS, F.cross_entropy(LOGITS, LABELS)),
    ({"label_smoothing": 0.2}, Task.CLASSIFICATION, LOGITS, LABELS, F.cross_entropy(LOGITS, LABELS, label_smoothing=0.2)),
    ({}, Task.REGRESSION, PRED, TARGET, F.mse_loss(PRED[:, 0], TARGET)),
    ({"name": "cross_entropy"}, Task.CLASSIFICATION, LOGITS, LABELS, F.cross_entropy(LOGITS, LABELS)),
    (
        {"name": "cross_entropy", "label_smoothing": 0.1, "class_weights": [1, 2, 3, 4]},
        Task.CLASSIFICATION, LOGITS, LABELS,
        F.cross_entropy(LOGITS, LABELS, weight=torch.tensor([1.0, 2, 3, 4]), label_smoothing=0.1),
    ),
    # class probabilities as targets (mixup, distillation)
    ({"name": "cross_entropy"}, Task.CLASSIFICATION, LOGITS, LOGITS.softmax(1), F.cross_entropy(LOGITS, LOGITS.softmax(1))),
    # binary: one output, integer labels (an hpo dataset's) or floats
    ({"name": "bce_with_logits"}, Task.CLASSIFICATION, ONE_LOGIT, BINARY, F.binary_cross_entropy_with_logits(ONE_LOGIT[:, 0], BINARY.float())),
    (
        {"name": "bce_with_logits", "pos_weight": 3.0}, Task.CLASSIFICATION, ONE_LOGIT, BINARY.float(),
        F.binary_cross_entropy_with_logits(ONE_LOGIT[:, 0], BINARY.float(), pos_weight=torch.tensor(3.0)),
    ),
    # multi-label: k outputs, (n, k) targets, one weight per label
    (
        {"name": "bce_with_logits", "pos_weight": [1, 2, 3, 4]}, Task.CLASSIFICATION, LOGITS, MULTI,
        F.binary_cross_entropy_with_logits(LOGITS, MULTI, pos_weight=torch.tensor([1.0, 2, 3, 4])),
    ),
    ({"name": "mse"}, Task.REGRESSION, PRED, TARGET, F.mse_loss(PRED[:, 0], TARGET)),
    ({"name": "l1"}, Task.REGRESSION, PRED, TARGET, F.l1_loss(PRED[:, 0], TARGET)),
    ({"name": "huber"}, Task.REGRESSION, PRED, TARGET, F.huber_loss(PRED[:, 0], TARGET)),
    ({"name": "huber", "delta": 0.3}, Task.REGRESSION, PRED, TARGET, F.huber_loss(PRED[:, 0], TARGET, delta=0.3)),
    # several regression targets
    ({"name": "mse"}, Task.REGRESSION, LOGITS, MULTI, F.mse_loss(LOGITS, MULTI)),
    # a user's own: a function, or a class instantiated without arguments
    ({"name": "torch.nn.functional:smooth_l1_loss"}, Task.REGRESSION, PRED[:, 0], TARGET, F.smooth_l1_loss(PRED[:, 0], TARGET)),
    ({"name": "torch.nn:SmoothL1Loss"}, Task.REGRESSION, PRED[:, 0], TARGET, F.smooth_l1_loss(PRED[:, 0], TARGET)),
]  # fmt: skip


@pytest.mark.parametrize(("options", "task", "outputs", "targets", "expected"), CASES)
def test_each_loss_is_torchs_own(options, task, outputs, targets, expected):
    loss = build_loss(LossConfig.model_validate(options), task, "cpu")
    got = loss(outputs, targets)
    assert got.shape == ()
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


def test_the_loss_keeps_the_gradient_and_a_half_precision_output():
    outputs = PRED.clone().requires_grad_()
    build_loss(LossConfig(name="huber"), Task.REGRESSION, "cpu")(outputs, TARGET).backward()
    assert outputs.grad is not None and outputs.grad.shape == PRED.shape
    half = build_loss(LossConfig(name="bce_with_logits"), Task.CLASSIFICATION, "cpu")
    assert torch.isfinite(half(ONE_LOGIT.bfloat16(), BINARY))


def test_every_registered_loss_builds_for_its_tasks():
    for name in LOSSES:
        for task in LOSSES[name].tasks:
            assert callable(build_loss(LossConfig(name=name), task, "cpu"))


def test_build_loss_refuses_a_loss_of_another_task():
    with pytest.raises(
        ValueError,
        match="loss 'mse' is for regression, not classification; choose one of: auto, bce_with_logits, cross_entropy",
    ):
        build_loss(LossConfig(name="mse"), Task.CLASSIFICATION, "cpu")


def test_the_model_has_one_output_per_binary_target():
    assert output_size("bce_with_logits", Task.CLASSIFICATION, 2) == 1
    assert output_size("bce_with_logits", Task.CLASSIFICATION, 5, (5,)) == 5
    assert output_size("auto", Task.CLASSIFICATION, 10) == 10
    assert output_size("cross_entropy", Task.CLASSIFICATION, 2) == 2
    assert output_size("auto", Task.REGRESSION, 1) == 1


BAD_LOSSES = [
    # (config, where, what the message must say)
    ({"loss": {"name": "cross_entropi"}}, ("loss", "name"), ["unknown loss 'cross_entropi'", "did you mean 'cross_entropy'", "available: auto, bce_with_logits, cross_entropy, huber, l1, mse", "'package.module:function'"]),
    ({"loss": {"name": "hubr"}, "data": {"name": "diabetes"}}, ("loss", "name"), ["did you mean 'huber'"]),
    ({"loss": {"name": "mse"}}, ("loss",), ["loss 'mse' does not apply to classification (dataset 'digits')", "choose one of: auto, bce_with_logits, cross_entropy"]),
    ({"loss": {"name": "cross_entropy"}, "data": {"name": "diabetes"}, "metric": "val_r2"}, ("loss",), ["does not apply to regression (dataset 'diabetes')", "choose one of: auto, huber, l1, mse"]),
    ({"loss": {"label_smoothing": 0.1}, "data": {"name": "diabetes"}}, ("loss",), ["label_smoothing apply to classification", "loss auto is mse"]),
    ({"loss": {"name": "cross_entropy", "class_weights": [1, -1]}}, ("loss", "class_weights"), ["one weight >= 0 per class", "[1.0, -1.0]"]),
    ({"loss": {"name": "bce_with_logits", "pos_weight": 0}}, ("loss", "pos_weight"), ["pos_weight must be above 0"]),
    ({"loss": {"name": "cross_entropy", "label_smoothing": 1.5}}, ("loss", "label_smoothing"), ["less than or equal to 1"]),
    ({"loss": {"name": "my loss:fn"}}, ("loss", "name"), ["not a reference of the form"]),
    ({"loss": {"name": "mse", "smoothing": 1}}, ("loss", "smoothing"), ["Extra inputs"]),
]  # fmt: skip


@pytest.mark.parametrize(("config", "where", "says"), BAD_LOSSES)
def test_bad_losses_are_reported_at_their_key(config, where, says):
    with pytest.raises(ValueError) as caught:
        TrainableConfig.model_validate(config)
    (error,) = caught.value.errors()
    assert error["loc"] == where
    for part in says:
        assert part in error["msg"]


def test_a_loss_section_holds_only_what_its_loss_reads():
    dumped = TrainableConfig.model_validate({"loss": {"name": "cross_entropy"}}).model_dump()
    assert dumped["loss"] == {
        "name": "cross_entropy",
        "label_smoothing": 0.0,
        "class_weights": None,
    }
    assert TrainableConfig().model_dump()["loss"] == {
        "name": "auto",
        "label_smoothing": 0.0,
        "class_weights": None,
    }
    user = TrainableConfig.model_validate({"loss": {"name": "my_pkg.losses:focal"}})
    assert user.model_dump()["loss"] == {"name": "my_pkg.losses:focal"}
