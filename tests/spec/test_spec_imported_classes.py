"""`hpo validate` of optimizers and LR schedulers by import path: each problem at its file,
line and key, with the keywords the class's signature accepts, exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hpo.cli import main
from hpo.errors import SpecError
from hpo.spec import load_spec

SCHEDULERS = """
import math


class WarmupCosineScheduler:
    def __init__(self, optimizer, warmup_epochs, max_epochs, min_lr=0.0):
        self.optimizer = optimizer
        self.warmup_epochs, self.max_epochs, self.min_lr = warmup_epochs, max_epochs, min_lr

    def step(self, epoch):
        pass


class NoStep:
    def __init__(self, optimizer):
        pass


def factory(optimizer):
    return None
"""


@pytest.fixture
def user_schedulers(tmp_path: Path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "user_sched.py").write_text(SCHEDULERS)
    sys.path.insert(0, str(code))
    yield
    sys.path.remove(str(code))
    sys.modules.pop("user_sched", None)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\n" + body)
    return path


GUIDE = "name: 'user_sched:WarmupCosineScheduler'"
ACCEPTS = "it accepts: warmup_epochs, max_epochs, min_lr"

# (spec body after `name: x`, "line: key" it must name, a fragment of the message).
ERRORS = [
    (
        "lr_scheduler: {name: torch.optim.lr_scheduler.ExponentiaLR, gamma: 0.9}",
        "2: lr_scheduler.name",
        "module 'torch.optim.lr_scheduler' has no attribute 'ExponentiaLR'; "
        "did you mean 'ExponentialLR'?",
    ),
    (
        "lr_scheduler: {name: 'user_shed:WarmupCosineScheduler'}",
        "2: lr_scheduler.name",
        "cannot import 'user_shed'",
    ),
    (
        "lr_scheduler: {name: torch.optim.SGD}",
        "2: lr_scheduler.name",
        "'torch.optim.SGD' is an optimizer, not an LR scheduler; expected a class made as "
        "Class(optimizer, **kwargs) with a step() method",
    ),
    (
        "lr_scheduler: {name: 'user_sched:NoStep'}",
        "2: lr_scheduler.name",
        "'user_sched:NoStep' is a class NoStep without step()",
    ),
    (
        "lr_scheduler: {name: 'user_sched:factory'}",
        "2: lr_scheduler.name",
        "'user_sched:factory' is a function without step()",
    ),
    (
        "optimizer: {name: torch.optim.lr_scheduler.StepLR}",
        "2: optimizer.name",
        "'torch.optim.lr_scheduler.StepLR' is a class StepLR, not an optimizer; expected a "
        "subclass of torch.optim.Optimizer",
    ),
    (
        "optimizer: {name: torch.optim.Adamm}",
        "2: optimizer.name",
        "module 'torch.optim' has no attribute 'Adamm'; did you mean 'Adam'?",
    ),
    (
        f"lr_scheduler:\n  {GUIDE}\n  warmup_epoch: 5\n  max_epochs: 50",
        "4: lr_scheduler.warmup_epoch",
        f"WarmupCosineScheduler takes no keyword argument 'warmup_epoch'; did you mean "
        f"'warmup_epochs'? {ACCEPTS}",
    ),
    (
        f"lr_scheduler: {{{GUIDE}, max_epochs: 50}}",
        "2: lr_scheduler.name",
        f"WarmupCosineScheduler needs warmup_epochs; set lr_scheduler.warmup_epochs ({ACCEPTS})",
    ),
    (
        f"lr_scheduler: {{{GUIDE}, warmup_epochs: 1, max_epochs: 5}}\n"
        "space:\n  lr_scheduler.min_lrr: {type: float, low: 0.0, high: 0.01}",
        "4: space.lr_scheduler.min_lrr",
        f"takes no keyword argument 'min_lrr'; did you mean 'min_lr'? {ACCEPTS}",
    ),
    (
        "optimizer: {name: torch.optim.Adam, momentum: 0.9}",
        "2: optimizer.momentum",
        "Adam takes no keyword argument 'momentum'; it accepts: lr, betas, eps, weight_decay",
    ),
    (
        "lr_scheduler: {name: torch.optim.lr_scheduler.ReduceLROnPlateau, interval: step}",
        "2: lr_scheduler.interval",
        "ReduceLROnPlateau.step takes the metric, which is known once per epoch; "
        "use interval: epoch",
    ),
    (
        "lr_scheduler: {name: 'torch.optim.lr_scheduler:'}",
        "2: lr_scheduler.name",
        "is not an import path such as 'torch.optim.SGD' or 'package.module:Class'",
    ),
    (
        "optimizer: {name: adamm}",
        "2: optimizer.name",
        "unknown optimizer 'adamm'; did you mean 'adam'? available: adam, adamw, rmsprop, sgd, "
        "or a class by import path",
    ),
]


@pytest.mark.usefixtures("user_schedulers")
@pytest.mark.parametrize(("body", "where", "message"), ERRORS)
def test_bad_classes_by_path_are_reported_at_their_key(tmp_path, body, where, message):
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, body))
    text = str(info.value)
    assert f"spec.yaml:{where}: " in text
    assert message in text
    assert info.value.exit_code == 2


@pytest.mark.usefixtures("user_schedulers")
def test_hpo_validate_exits_2_naming_the_accepted_kwargs(tmp_path, capsys):
    spec = write(
        tmp_path,
        f"optimizer: {{name: torch.optim.SGD, lr: 0.1, momentun: 0.9}}\n"
        f"lr_scheduler:\n  {GUIDE}\n  warmup_epochs: 5\n  max_epoch: 50\n",
    )
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "spec.yaml:2: optimizer.momentun: SGD takes no keyword argument 'momentun'; " in err
    assert "did you mean 'momentum'? it accepts: lr, momentum, dampening, weight_decay" in err
    assert "spec.yaml:6: lr_scheduler.max_epoch: " in err
    assert f"did you mean 'max_epochs'? {ACCEPTS}" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("user_schedulers")
def test_good_classes_by_path_validate_and_their_kwargs_are_searchable(tmp_path):
    spec = load_spec(
        write(
            tmp_path,
            "metric: val_accuracy\nmode: max\n"
            "optimizer: {name: torch.optim.SGD, lr: 0.1, momentum: 0.9, no_decay: [bias, norm]}\n"
            f"lr_scheduler: {{{GUIDE}, warmup_epochs: 2, max_epochs: 10}}\n"
            "space:\n"
            "  optimizer.momentum: {type: float, low: 0.5, high: 0.99}\n"
            "  lr_scheduler.warmup_epochs: {type: int, low: 1, high: 3}\n",
        )
    )
    base = spec.base_config()
    assert base["optimizer"] == {
        "name": "torch.optim.SGD",
        "lr": 0.1,
        "weight_decay": 0.0,
        "no_decay": ["bias", "norm"],
        "momentum": 0.9,
    }
    assert base["lr_scheduler"]["warmup_epochs"] == 2


def test_registered_names_take_no_class_kwargs(tmp_path):
    """A registered name's unknown key stays an unknown key of the section."""
    with pytest.raises(SpecError, match=r"optimizer.betas: unknown key"):
        load_spec(write(tmp_path, "optimizer: {name: adam, betas: [0.9, 0.99]}"))
