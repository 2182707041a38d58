"""`hpo.check` names the fault in user models with a known bug, and passes a sound one.

Each faulty model is real code in a module written for the test (as a user's would be),
named by the spec's `model.name` or `trainable`; the checks run on the digits data.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hpo.errors import UsageError
from hpo.spec import check
from hpo.trainable.checks import CheckResult
from tests.conftest import SEARCH_SPACES

MODELS = '''
import torch
from torch import nn

from hpo.trainable.pipeline import Pipeline


class Sound(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes))

    def forward(self, x):
        return self.net(x)


class SoftmaxNet(Sound):
    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)


class UnusedLayer(Sound):
    def __init__(self, num_classes):
        super().__init__(num_classes)
        self.extra = nn.Linear(64, 64)

    def forward(self, x):
        return self.net(x)


class IgnoresInput(Sound):
    def forward(self, x):
        return self.net(torch.zeros_like(x))


class WrongOutputs(Sound):
    def __init__(self, num_classes):
        super().__init__(num_classes - 3)


class Raises(Sound):
    def forward(self, x):
        raise ValueError("my model cannot take this batch")


class NoEvalPipeline(Pipeline):
    """Validates in train mode: dropout and batch norm then act as in training."""

    def validate(self, epoch):
        total, seen = 0.0, 0
        with torch.no_grad():
            for x, y in self.val_loader:
                total += float(self.criterion(self.model(x), y)) * len(y)
                seen += len(y)
        return {"val_loss": total / seen}


def train(config):
    return None
'''


@pytest.fixture
def user_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "faulty_models.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return "faulty_models"


def spec_of(**changes) -> dict:
    spec = {
        "name": "checked",
        "metric": "val_loss",
        "data": {"name": "digits", "val_fraction": 0.2},
        "training": {"epochs": 1, "batch_size": 64},
    }
    return {**spec, **changes}


def by_name(results, name: str) -> CheckResult:
    (found,) = [r for r in results if r.name == name and r.config == "base"]
    return found


def failed(report) -> list[str]:
    return [r.name for r in report.failed]


def test_a_sound_model_passes_every_check(user_models):
    report = check(spec_of(model={"name": f"{user_models}:Sound"}), sample=0)
    assert report.ok, [(r.name, r.reason) for r in report.failed]
    assert set(report.configs) == {"base"}
    overfit = by_name(report, "one batch overfits")
    assert overfit.details["end"] < 0.1 * overfit.details["start"] or overfit.details["accuracy"] == 1
    assert "batch size 64" in by_name(report, "memory: one training step").reason


def test_softmax_before_the_loss_is_named(user_models):
    report = check(spec_of(model={"name": f"{user_models}:SoftmaxNet"}), sample=0)
    result = by_name(report, "model: logits, not probabilities")
    assert not result.ok
    assert "softmax before CrossEntropyLoss" in result.reason
    assert "remove the last softmax" in result.fix


def test_a_layer_never_used_in_forward_is_named(user_models):
    report = check(spec_of(model={"name": f"{user_models}:UnusedLayer"}), sample=0)
    assert failed(report) == ["gradients"]
    result = by_name(report, "gradients")
    assert "2 parameters get no gradient: extra.weight, extra.bias" in result.reason
    assert result.details["no_gradient"] == ["extra.weight", "extra.bias"]


def test_a_model_whose_output_ignores_its_input_is_named(user_models):
    report = check(spec_of(model={"name": f"{user_models}:IgnoresInput"}), sample=0)
    result = by_name(report, "one batch overfits")
    assert not result.ok
    assert "the model's output ignores its input" in result.reason
    assert f"in {result.details['steps']} steps" in result.reason


def test_a_model_with_the_wrong_number_of_outputs_is_named(user_models):
    report = check(spec_of(model={"name": f"{user_models}:WrongOutputs"}), sample=0)
    result = by_name(report, "model: output shape")
    assert not result.ok
    assert "gives 7 outputs per sample, but the data has 10 classes" in result.reason
    assert "10 outputs" in result.fix


def test_a_pipeline_whose_validate_forgets_eval_is_named(user_models):
    report = check(spec_of(trainable=f"{user_models}:NoEvalPipeline"), sample=0)
    assert failed(report) == ["modes and devices"]
    result = by_name(report, "modes and devices")
    assert "validate runs the model in train mode" in result.reason
    assert "self.model.eval()" in result.fix


def test_a_model_that_raises_is_each_checks_failure_with_the_users_frame(user_models):
    report = check(spec_of(model={"name": f"{user_models}:Raises"}), sample=0)
    result = by_name(report, "model: output shape")
    assert not result.ok
    assert result.reason.startswith("raised ValueError: my model cannot take this batch at ")
    assert "faulty_models.py:" in result.details["frame"]
    assert "raise ValueError" in result.details["line"]
    # Each check ran, and reported it: the data checks, which never call the model, passed.
    assert by_name(report, "data: labels").ok
    assert not by_name(report, "gradients").ok


def test_sampled_configs_are_checked_and_labelled(user_models):
    space = {"model.hidden_size": {"type": "int", "low": 8, "high": 32}}
    spec = spec_of(model={"name": "mlp", "hidden_size": 16}, space=space)
    first = check(spec, sample=2)
    assert list(first.configs) == ["base", "sample 1", "sample 2"]
    assert {r.config for r in first} == {"base", "sample 1", "sample 2"}
    # The same draws each time: the spec's seed.
    assert check(spec, sample=2).configs == first.configs
    # The data checks ran once: the samples share the base config's data.
    assert not [r for r in first if r.config != "base" and r.name.startswith("data:")]


def test_a_training_function_is_told_the_checks_need_a_pipeline(user_models):
    with pytest.raises(UsageError, match=r"make it a subclass of hpo\.Pipeline"):
        check({"name": "f", "metric": "val_loss", "trainable": f"{user_models}:train"})


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(SEARCH_SPACES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_spec_passes_every_check(path: Path):
    started = time.perf_counter()
    report = check(path)
    assert report.ok, [(r.config, r.name, r.reason) for r in report.failed]
    assert len(report.configs) == 3
    # The whole process takes ~4 s more (Python, torch); `hpo check` aims at 10 s in all.
    assert time.perf_counter() - started < 30
