"""Optimizers and LR schedulers by import path, stepped as their signatures say, and
`optimizer.no_decay`."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

import hpo
from hpo.trainable.config import LRSchedulerConfig, OptimizerConfig, TrainableConfig
from hpo.trainable.imported import StepTakes, signature_of, step_takes
from hpo.trainable.loop import fit
from hpo.trainable.optim import build_optimizer
from hpo.trainable.pipeline import Pipeline
from hpo.trainable.schedules import Plan, build_lr_schedule
from hpo.types import Mode

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class WarmupCosineScheduler:
    """The PyTorch training guide's scheduler, as the guide writes it: no torch base class, no
    state_dict, and `step(epoch)` setting the rate of the epoch about to start."""

    def __init__(self, optimizer, warmup_epochs, max_epochs, min_lr=0.0):
        self.optimizer = optimizer
        self.warmup_epochs = warmup_epochs
        self.max_epochs = max_epochs
        self.min_lr = min_lr
        self.base_lr = optimizer.param_groups[0]["lr"]

    def step(self, epoch):
        if epoch < self.warmup_epochs:
            lr = self.base_lr * (epoch + 1) / self.warmup_epochs
        else:
            progress = (epoch - self.warmup_epochs) / (self.max_epochs - self.warmup_epochs)
            lr = self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (
                1 + math.cos(math.pi * progress)
            )
        for group in self.optimizer.param_groups:
            group["lr"] = lr


class LossWatcher:
    """A user's scheduler whose step takes the metric (by its parameter's name), halving the
    rate whenever it is not better than the best so far."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.seen: list[float] = []

    def step(self, val_loss):
        if self.seen and val_loss >= min(self.seen):
            for group in self.optimizer.param_groups:
                group["lr"] /= 2
        self.seen.append(val_loss)


class PerStep:
    """A scheduler counting optimizer steps itself (`interval: step`)."""

    def __init__(self, optimizer, every: int):
        self.optimizer, self.every, self.calls = optimizer, every, 0

    def step(self):
        self.calls += 1
        if self.calls % self.every == 0:
            for group in self.optimizer.param_groups:
                group["lr"] *= 0.5


HERE = "tests.trainable.test_imported_classes"  # what trial workers import the classes from


def path(name: str) -> str:
    return f"{HERE}:{name}"


def guide_rates(base: float, warmup: int, total: int) -> list[float]:
    """The guide's rates, epoch by epoch, as its own loop gives them."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base)
    scheduler = WarmupCosineScheduler(optimizer, warmup, total)
    rates = []
    for epoch in range(total):
        scheduler.step(epoch)
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


def test_the_guides_warmup_cosine_scheduler_by_path_sets_each_epochs_rate(digits):
    config = {
        "training": {"epochs": 6, "batch_size": 128},
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "lr_scheduler": {
            "name": path("WarmupCosineScheduler"),
            "warmup_epochs": 2,
            "max_epochs": 6,
        },
    }
    epochs = list(fit(config, digits))
    assert [m["lr"] for m in epochs] == pytest.approx(guide_rates(0.1, 2, 6))
    # Warmup over epochs 0 and 1, then cosine from the base rate down over epochs 2 to 5.
    cosine_1 = 0.1 * 0.5 * (1 + math.cos(math.pi / 4))
    assert [m["lr"] for m in epochs][:4] == pytest.approx([0.05, 0.1, 0.1, cosine_1])
    assert epochs[-1]["val_accuracy"] > 0.85


def test_the_guides_scheduler_resumes_from_a_checkpoint_at_the_same_rates(digits):
    """Its state, without a state_dict of its own, is its plain attributes; the loaded state
    goes through `weights_only` loading as a checkpoint's does."""
    config = {
        "training": {"epochs": 5, "batch_size": 128},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "lr_scheduler": {
            "name": path("WarmupCosineScheduler"),
            "warmup_epochs": 2,
            "max_epochs": 5,
        },
    }
    whole = [m["lr"] for m in Pipeline(config, digits).run()]
    first = Pipeline(config, digits)
    started = [first.fit_epoch()["lr"] for _ in range(3)]
    state = first.state_dict()
    torch.save(state, buffer := io.BytesIO())
    buffer.seek(0)
    resumed = Pipeline(config, digits)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert started + [m["lr"] for m in resumed.run()] == pytest.approx(whole)


def test_kwargs_are_passed_as_written_not_converted_by_a_field_of_the_same_name():
    """`warmup_epochs` is also a field of hpo's own warmup_cosine (a float); the guide's class
    gets the int it was given, and the dump holds it so."""
    config = TrainableConfig.model_validate(
        {
            "lr_scheduler": {
                "name": path("WarmupCosineScheduler"),
                "warmup_epochs": 5,
                "max_epochs": 50,
            }
        }
    )
    assert config.lr_scheduler.kwargs() == {"warmup_epochs": 5, "max_epochs": 50}
    dumped = config.model_dump(mode="json")["lr_scheduler"]
    assert dumped == {
        "name": path("WarmupCosineScheduler"),
        "interval": "epoch",
        "warmup_epochs": 5,
        "max_epochs": 50,
    }
    assert type(dumped["warmup_epochs"]) is int
    assert TrainableConfig.model_validate(config.model_dump(mode="json")) == config
    other = {"name": path("WarmupCosineScheduler"), "warmup_epochs": 4, "max_epochs": 50}
    assert TrainableConfig.model_validate({"lr_scheduler": other}) != config


@pytest.mark.parametrize(
    ("cls", "takes"),
    [
        (torch.optim.lr_scheduler.ReduceLROnPlateau, StepTakes.METRIC),
        (torch.optim.lr_scheduler.StepLR, StepTakes.NOTHING),
        (torch.optim.lr_scheduler.CosineAnnealingWarmRestarts, StepTakes.NOTHING),
        (WarmupCosineScheduler, StepTakes.COUNT),
        (LossWatcher, StepTakes.METRIC),
        (PerStep, StepTakes.NOTHING),
    ],
)
def test_what_step_takes_is_told_by_its_signature(cls, takes):
    assert step_takes(cls) is takes


def _rates(cfg: LRSchedulerConfig, metrics: list[float], mode: Mode = Mode.MIN, steps: int = 1):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = build_lr_schedule(cfg, optimizer, Plan(len(metrics), steps, mode))
    rates = []
    for metric in metrics:
        rates.append(optimizer.param_groups[0]["lr"])
        for _ in range(steps):
            optimizer.step()
            schedule.after_step()
        schedule.after_epoch(metric)
    return rates


def test_reduce_lr_on_plateau_by_path_is_fed_the_metric_in_the_specs_mode():
    cfg = LRSchedulerConfig.model_validate(
        {"name": "torch.optim.lr_scheduler.ReduceLROnPlateau", "patience": 0, "factor": 0.5}
    )
    rising = [0.1, 0.2, 0.3, 0.4]
    # Maximised, a rising metric improves every epoch: the rate holds.
    assert _rates(cfg, rising, Mode.MAX) == [1.0, 1.0, 1.0, 1.0]
    # Minimised (torch's default), the same values never improve after the first.
    assert _rates(cfg, rising, Mode.MIN) == [1.0, 1.0, 0.5, 0.25]


def test_a_users_scheduler_whose_step_takes_the_metric_is_given_it():
    cfg = LRSchedulerConfig.model_validate({"name": path("LossWatcher")})
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = build_lr_schedule(cfg, optimizer, Plan(3, 1, Mode.MIN))
    for metric in (0.5, 0.4, 0.6):
        schedule.after_epoch(metric)
    assert schedule.scheduler.seen == [0.5, 0.4, 0.6]
    assert optimizer.param_groups[0]["lr"] == 0.5


def test_interval_step_steps_after_every_optimizer_step():
    per_step = {"name": path("PerStep"), "every": 2, "interval": "step"}
    assert _rates(LRSchedulerConfig.model_validate(per_step), [0, 0, 0], steps=2) == [1, 0.5, 0.25]
    per_epoch = {"name": path("PerStep"), "every": 2}
    assert _rates(LRSchedulerConfig.model_validate(per_epoch), [0, 0, 0], steps=2) == [1, 1, 0.5]


def test_a_torch_scheduler_by_path_trains(digits):
    config = {
        "training": {"epochs": 3, "batch_size": 128},
        "optimizer": {"lr": 3e-3},
        "lr_scheduler": {"name": "torch.optim.lr_scheduler.ExponentialLR", "gamma": 0.5},
    }
    epochs = list(fit(config, digits))
    assert [m["lr"] for m in epochs] == pytest.approx([3e-3, 1.5e-3, 7.5e-4])


def test_an_optimizer_by_path_gets_hpos_lr_and_its_own_kwargs(digits):
    model = nn.Linear(4, 2)
    cfg = OptimizerConfig.model_validate(
        {"name": "torch.optim.SGD", "lr": 0.05, "momentum": 0.9, "dampening": 0.1}
    )
    optimizer = build_optimizer(cfg, model)
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["dampening"], group["weight_decay"]) == (
        0.05,
        0.9,
        0.1,
        0.0,
    )
    config = {"training": {"epochs": 3, "batch_size": 128}, "optimizer": cfg.model_dump()}
    assert list(fit(config, digits))[-1]["val_accuracy"] > 0.85


def test_a_class_that_is_no_optimizer_fails_the_trial_with_the_validate_message():
    cfg = OptimizerConfig.model_validate({"name": "torch.optim.lr_scheduler.StepLR"})
    with pytest.raises(ValueError, match="is a class StepLR, not an optimizer"):
        build_optimizer(cfg, nn.Linear(2, 2))
    cfg = OptimizerConfig.model_validate({"name": "torch.optim.Adam", "momentum": 0.9})
    with pytest.raises(
        ValueError, match="Adam takes no keyword argument 'momentum'; it accepts: lr"
    ):
        build_optimizer(cfg, nn.Linear(2, 2))


def test_signature_lists_the_keywords_after_the_first_argument():
    signature = signature_of(WarmupCosineScheduler)
    assert signature.accepted == ("warmup_epochs", "max_epochs", "min_lr")
    assert signature.required == ("warmup_epochs", "max_epochs")
    assert not signature.any_keyword


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)
        self.batch_norm = nn.BatchNorm1d(4)
        self.layer_norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 1, bias=False)


@pytest.mark.parametrize("name", ["adamw", "torch.optim.AdamW"])
def test_no_decay_leaves_biases_and_norm_weights_out_of_weight_decay(name):
    model = Net()
    cfg = OptimizerConfig.model_validate(
        {"name": name, "lr": 0.1, "weight_decay": 0.5, "no_decay": ["bias", "norm"]}
    )
    optimizer = build_optimizer(cfg, model)
    decayed, kept = optimizer.param_groups
    assert decayed["weight_decay"] == 0.5 and kept["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(model.linear.weight), id(model.head.weight)}
    assert len(kept["params"]) == 5  # linear.bias and both norms' weight and bias
    # With no gradient, AdamW's step is its weight decay alone: only the decayed ones shrink.
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"linear.weight", "head.weight"}


def test_no_decay_bias_alone_keeps_norm_weights_decayed():
    model = Net()
    cfg = OptimizerConfig.model_validate(
        {"name": "adamw", "weight_decay": 0.1, "no_decay": ["bias"]}
    )
    kept = build_optimizer(cfg, model).param_groups[1]["params"]
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in kept) == [
        "batch_norm.bias",
        "layer_norm.bias",
        "linear.bias",
    ]


def test_without_no_decay_one_group_as_checkpoints_of_earlier_releases_hold():
    optimizer = build_optimizer(OptimizerConfig(name="adamw"), Net())
    assert len(optimizer.param_groups) == 1
    assert "no_decay" not in TrainableConfig().model_dump(mode="json")["optimizer"]


def test_no_decay_is_validated():
    with pytest.raises(ValueError, match="Input should be 'bias' or 'norm'"):
        OptimizerConfig.model_validate({"no_decay": ["biases"]})


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session", "workdir")
def test_classes_by_path_in_trials_of_a_search():
    """Through Ray: the trials import the guide's scheduler and torch's SGD by path, with a
    searched keyword argument each, and every epoch's rate is the guide's."""
    experiment = hpo.run(
        {
            "name": "by-path",
            "metric": "val_accuracy",
            "mode": "max",
            "model": {"hidden_size": 16, "num_layers": 1},
            "optimizer": {"name": "torch.optim.SGD", "lr": 0.1, "no_decay": ["bias"]},
            "lr_scheduler": {"name": path("WarmupCosineScheduler"), "max_epochs": 4},
            "training": {"epochs": 4, "batch_size": 128},
            "space": {
                "optimizer.momentum": {"type": "categorical", "choices": [0.5, 0.9]},
                "lr_scheduler.warmup_epochs": {"type": "categorical", "choices": [1, 2]},
            },
            "searcher": "grid",
            "scheduler": "fifo",
            "tracking": {"tensorboard": False},
        }
    )
    trials = experiment.trials()
    assert len(trials) == 4 and set(trials["status"]) == {"COMPLETED"}
    history = experiment.history()
    for _, trial in trials.iterrows():
        warmup = trial["params.lr_scheduler.warmup_epochs"]
        rates = history[history["trial_id"] == trial["trial_id"]].sort_values("iteration")["lr"]
        assert list(rates) == pytest.approx(guide_rates(0.1, warmup, 4))
        config = experiment.config(trial["trial_id"])
        assert config["optimizer"]["momentum"] == trial["params.optimizer.momentum"]
        assert type(config["lr_scheduler"]["warmup_epochs"]) is int


class GuidePipeline(Pipeline):
    """The guide's shape: `setup_optimizer` makes its own optimizer and scheduler."""

    def setup_optimizer(self):
        super().setup_optimizer()
        self.scheduler = WarmupCosineScheduler(self.optimizer, warmup_epochs=2, max_epochs=4)


def test_a_pipeline_setting_the_guides_scheduler_itself_steps_and_resumes_it(digits):
    config = {"training": {"epochs": 4, "batch_size": 128}, "optimizer": {"name": "sgd", "lr": 0.1}}
    whole = [m["lr"] for m in GuidePipeline(config, digits).run()]
    assert whole == pytest.approx(guide_rates(0.1, 2, 4))
    first = GuidePipeline(config, digits)
    started = [first.fit_epoch()["lr"] for _ in range(2)]
    resumed = GuidePipeline(config, digits)
    resumed.load_state_dict(first.state_dict())
    assert started + [m["lr"] for m in resumed.run()] == pytest.approx(whole)
