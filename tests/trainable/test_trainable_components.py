"""Each registered optimizer, LR scheduler and model, and user models by reference."""

import math
import re
import sys
import typing

import pytest
import torch

from hpo.trainable import LR_SCHEDULERS, OPTIMIZERS, TrainableConfig
from hpo.trainable.config import DataConfig, LRSchedulerConfig, ModelConfig, OptimizerConfig
from hpo.trainable.data import load_dataset
from hpo.trainable.loop import Trainer, fit
from hpo.trainable.models import build_model
from hpo.trainable.optim import build_optimizer
from hpo.trainable.schedules import Plan, build_lr_schedule
from hpo.types import Mode

# Tiny models train fastest on one thread, and the test machine's cores are shared.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


OPTIMIZER_SETTINGS = {
    "sgd": {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    "adam": {"lr": 3e-3},
    "adamw": {"lr": 3e-3, "weight_decay": 1e-2},
    "rmsprop": {"lr": 1e-3},
}


def test_every_optimizer_is_tested():
    assert set(OPTIMIZER_SETTINGS) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(OPTIMIZER_SETTINGS))
def test_optimizers_learn(digits, name):
    config = {"training": {"epochs": 3}, "optimizer": {"name": name, **OPTIMIZER_SETTINGS[name]}}
    assert list(fit(config, digits))[-1]["val_accuracy"] > 0.85


def test_optimizer_options_reach_torch():
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(
        OptimizerConfig(name="sgd", lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.01), params
    )
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (
        0.1,
        0.5,
        True,
        0.01,
    )
    assert isinstance(build_optimizer(OptimizerConfig(name="rmsprop"), params), torch.optim.RMSprop)
    with pytest.raises(ValueError, match="nesterov needs name: sgd and momentum > 0"):
        OptimizerConfig(name="sgd", nesterov=True)


def _lrs(name: str, epochs: int = 4, steps: int = 5, **options) -> list[float]:
    """The learning rate at the start of every epoch, for a constant monitored metric."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = build_lr_schedule(
        LRSchedulerConfig(name=name, **options), optimizer, Plan(epochs, steps, Mode.MIN)
    )
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        for _ in range(steps):
            optimizer.step()
            schedule.after_step()
        schedule.after_epoch(1.0)
    return rates


SCHEDULE_CASES = {
    "none": ({}, [1.0, 1.0, 1.0, 1.0]),
    "step": ({"step_size": 2, "gamma": 0.5}, [1.0, 1.0, 0.5, 0.5]),
    "cosine": (
        {},
        [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))],
    ),
    "exponential": ({"gamma": 0.5}, [1.0, 0.5, 0.25, 0.125]),
    # Restarts after 2 epochs, then after 4 more: epochs 0, 1 | 2, 3, ...
    "cosine_restarts": (
        {"T_0": 2, "T_mult": 2, "eta_min": 0.1},
        [
            1.0,
            0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)),
            1.0,
            0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)),
        ],
    ),
    # A constant metric never improves: the rate drops after `patience` epochs.
    "plateau": ({"patience": 1, "factor": 0.5}, [1.0, 1.0, 1.0, 0.5]),
    # warmup over the first epoch's 5 steps, starting at 1/5
    "warmup_cosine": (
        {"warmup_epochs": 1},
        [0.2, 1.0, 0.5 * (1 + math.cos(math.pi * 5 / 15)), 0.5 * (1 + math.cos(math.pi * 10 / 15))],
    ),
}


# gamma's default, 0.1, is step's factor every 10 epochs; per epoch it leaves nothing to learn.
TRAIN_SETTINGS = {"exponential": {"gamma": 0.9}}


def test_every_lr_scheduler_is_tested():
    assert set(SCHEDULE_CASES) | {"onecycle"} == set(LR_SCHEDULERS)


@pytest.mark.parametrize("name", sorted(SCHEDULE_CASES))
def test_lr_schedules(name):
    options, expected = SCHEDULE_CASES[name]
    assert _lrs(name, **options) == pytest.approx(expected)


def test_onecycle_rises_to_the_optimizer_lr_and_anneals():
    rates = _lrs("onecycle", epochs=10, steps=10, pct_start=0.3)
    peak = rates.index(max(rates))
    assert max(rates) == pytest.approx(1.0, rel=0.05)
    assert rates[0] < 0.1 and rates[-1] < rates[peak] / 10
    assert 2 <= peak <= 4


@pytest.mark.parametrize("name", sorted(LR_SCHEDULERS))
def test_lr_schedulers_train(digits, name):
    config = {
        "training": {"epochs": 3, "accumulate_batches": 2},
        "optimizer": {"lr": 3e-3},
        "lr_scheduler": {"name": name, **TRAIN_SETTINGS.get(name, {})},
    }
    epochs = list(fit(config, digits))
    assert epochs[-1]["val_accuracy"] > 0.8
    assert all(m["lr"] > 0 for m in epochs)


@pytest.mark.parametrize(
    ("model", "outputs"),
    [
        ({"name": "mlp", "hidden_size": 8, "num_layers": 3}, (8, 8, 8)),
        ({"name": "mlp", "hidden_sizes": [16, 4], "batch_norm": True, "dropout": 0.1}, (16, 4)),
        ({"name": "mlp", "num_layers": 0}, ()),
    ],
)
def test_mlp_shapes(model, outputs):
    net = build_model(ModelConfig(**model), (1, 8, 8), 10)
    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear] == [*outputs, 10]
    assert linear[0].in_features == 64
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules()) == model.get(
        "batch_norm", False
    )
    assert net(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_cnn_fits_small_images_and_learns_digits(digits):
    net = build_model(
        ModelConfig(name="cnn", channels=4, num_blocks=4, num_layers=0), (1, 8, 8), 10
    )
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)  # pooling stops at 1x1
    config = {
        "model": {"name": "cnn", "channels": 8, "num_layers": 1, "batch_norm": True},
        "augment": {"max_shift": 1},
        "training": {"epochs": 3},
        "optimizer": {"lr": 3e-3},
    }
    assert list(fit(config, digits))[-1]["val_accuracy"] > 0.85


def test_cnn_needs_image_shaped_data():
    with pytest.raises(ValueError, match="needs image-shaped data"):
        build_model(ModelConfig(name="cnn"), (30,), 2)


def test_user_model_by_reference(digits, tmp_path, monkeypatch):
    (tmp_path / "user_models.py").write_text(
        "from torch import nn\n\n"
        "def tiny(config, input_shape, output_dim):\n"
        "    width = config.params.get('width', 4)\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, output_dim))\n\n"
        "def not_a_model(config, input_shape, output_dim):\n"
        "    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "user_models", raising=False)
    config = {
        "model": {"name": "user_models:tiny", "params": {"width": 32}},
        "training": {"epochs": 3},
        "optimizer": {"lr": 1e-2},
    }
    trainer = Trainer(config, digits)
    assert trainer.model[1].out_features == 32
    assert list(trainer.run())[-1]["val_accuracy"] > 0.85
    with pytest.raises(TypeError, match=r"not an nn\.Module"):
        Trainer({"model": {"name": "user_models:not_a_model"}}, digits)
    with pytest.raises(ImportError, match="has no attribute 'missing'"):
        Trainer({"model": {"name": "user_models:missing"}}, digits)
    with pytest.raises(ImportError, match="cannot import 'no_such_module'"):
        Trainer({"model": {"name": "no_such_module:build"}}, digits)


def test_a_model_by_import_path_gets_its_params_and_what_its_signature_asks(
    tmp_path, monkeypatch, digits
):
    (tmp_path / "user_nets.py").write_text(
        "from torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, width, num_classes, input_shape, depth=1):\n"
        "        super().__init__()\n"
        "        self.seen = (width, num_classes, input_shape, depth)\n"
        "        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(),\n"
        "                                  nn.Linear(width, num_classes))\n\n"
        "    def forward(self, x):\n"
        "        return self.body(x)\n\n"
        "def regressor(num_outputs):\n"
        "    return nn.Linear(10, num_outputs)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "user_nets", raising=False)
    config = {"model": {"name": "user_nets:Net", "params": {"width": 16, "depth": 2}}}
    trainer = Trainer({**config, "training": {"epochs": 2}, "optimizer": {"lr": 1e-2}}, digits)
    assert trainer.model.seen == (16, 10, (1, 8, 8), 2)
    assert list(trainer.run())[-1]["val_accuracy"] > 0.5
    with pytest.raises(TypeError, match=r"takes no parameter\(s\) colour \(from model.params\)"):
        Trainer({"model": {"name": "user_nets:Net", "params": {"width": 4, "colour": 1}}}, digits)
    diabetes = {"data": {"name": "diabetes"}, "metric": "val_mse"}
    trainer = Trainer(
        {**diabetes, "model": {"name": "user_nets:regressor"}},
        load_dataset(DataConfig(name="diabetes")),
    )
    assert trainer.model.out_features == 1


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        (
            "model",
            {"name": "resnet"},
            "unknown model 'resnet'; available: cnn, mlp, or 'package.module:function'",
        ),
        ("model", {"name": "a b:c"}, "not a reference of the form"),
        ("model", {"kernel_size": 4}, "kernel_size must be odd"),
        ("model", {"hidden_sizes": [8, 0]}, "every hidden size must be at least 1"),
        (
            "optimizer",
            {"name": "lbfgs"},
            "unknown optimizer 'lbfgs'; available: adam, adamw, rmsprop, sgd",
        ),
        (
            "lr_scheduler",
            {"name": "cyclic"},
            "unknown LR scheduler 'cyclic'; available: cosine, cosine_restarts, exponential, none, "
            "onecycle, plateau, step, warmup_cosine, or a class by import path",
        ),
        ("training", {"precision": "fp8"}, "Input should be 'auto', 'fp32', 'fp16' or 'bf16'"),
        ("early_stopping", {"patience": 0}, "greater than or equal to 1"),
        ("checkpoint", {"every": -1}, "greater than or equal to 0"),
    ],
)
def test_config_errors_name_the_choices(section, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainableConfig.model_validate({section: value})


def test_monitored_metric_must_be_reported():
    with pytest.raises(ValueError, match="does not report 'val_r2' for dataset 'digits'"):
        TrainableConfig(metric="val_r2")
    assert TrainableConfig(data={"name": "diabetes"}, metric="val_r2").metric == "val_r2"


def test_training_options_have_documented_choices():
    precision = TrainableConfig.model_fields["training"].annotation.model_fields["precision"]
    assert typing.get_args(precision.annotation) == ("auto", "fp32", "fp16", "bf16")
