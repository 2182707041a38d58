"""Issue 22, section 3: NaN gradients are named, AMP's skipped steps counted, anomaly mode.

The models below make a gradient non-finite on chosen optimizer steps, in a layer that is
not the first in `named_parameters` order, so that naming "the first parameter" is checked
against the one whose gradient really is NaN or infinite.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import hpo
from hpo.trainable.checkpoint import load_checkpoint, save_checkpoint
from hpo.trainable.gradients import clip_and_measure, first_non_finite, skipped_step
from hpo.trainable.pipeline import Pipeline

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS_PER_EPOCH = 4  # 64 training samples in batches of 16
CONFIG: dict[str, Any] = {
    "training": {"epochs": 3, "batch_size": 16},
    "optimizer": {"name": "sgd", "lr": 0.05},
    "data": {"name": "tests:unused", "num_classes": 3},
    "loader": {"num_workers": 0},
}


class _Blow(torch.autograd.Function):
    """The identity forward; backward multiplies the gradient by infinity when told to."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, blow: bool) -> torch.Tensor:
        ctx.blow = blow
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return (grad * math.inf if ctx.blow else grad), None


class BlowingUp(nn.Module):
    """`body` then `head`, but `head` is defined (and named) first: the gradient that blows up
    on the steps in `blow_at` (counted from 1 over the whole trial) is `body`'s only."""

    def __init__(self, blow_at: set[int], inputs: int = 4, outputs: int = 3):
        super().__init__()
        self.head = nn.Linear(8, outputs)
        self.body = nn.Linear(inputs, 8)
        self.blow_at, self.calls = blow_at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
        blow = self.training and self.calls in self.blow_at
        return self.head(_Blow.apply(torch.relu(self.body(x.flatten(1))), blow))


class WhereSqrt(nn.Module):
    """`where(h < 0, 0, sqrt(h))`: a finite forward, but sqrt's backward at negative h is NaN
    (the unselected branch's gradient, 0 / NaN): the guide's classic NaN."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 3)
        self.body = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.head(torch.where(h < 0, torch.zeros_like(h), torch.sqrt(h)))


def _data(n: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 4, generator=generator), torch.randint(0, 3, (n,)))


class SmallPipeline(Pipeline):
    """Its own data; the model is the class attribute `make_model`."""

    make_model: Any = None

    def setup_data(self) -> None:
        self.train_dataset, self.val_dataset = _data(64, 1), _data(32, 2)

    def setup_model(self) -> None:
        self.model = self.make_model()


def _pipeline(make_model: Any, **training: Any) -> SmallPipeline:
    cls = type("P", (SmallPipeline,), {"make_model": staticmethod(make_model)})
    return cls({**CONFIG, "training": {**CONFIG["training"], **training}})


def _amp_on_cpu(pipeline: Pipeline) -> Pipeline:
    """The pipeline with fp16's loss scaler (which CPU training never picks) switched on: the
    real `GradScaler`, which skips steps with infinite gradients on any device."""
    pipeline.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    return pipeline


def test_a_non_finite_gradient_fails_the_trial_naming_its_parameter_epoch_and_step():
    blow = STEPS_PER_EPOCH + 3  # the third optimizer step of epoch 2
    pipeline = _pipeline(lambda: BlowingUp({blow}))
    first = pipeline.fit_epoch()
    assert math.isfinite(first["grad_norm"]) and "amp_skipped_steps" not in first
    with pytest.raises(FloatingPointError) as failed:
        pipeline.fit_epoch()
    message = str(failed.value)
    # inf times the ReLU's zeros, summed over the batch, is NaN as often as inf.
    assert re.match(r"the gradient of body\.weight became (nan|-?inf) in epoch 2, step 3 ", message)
    assert "training.detect_anomaly: true" in message
    # It failed before the step: the weights are still finite, not NaN everywhere.
    assert all(bool(torch.isfinite(p).all()) for p in pipeline.model.parameters())


def test_an_overflowing_norm_of_finite_gradients_names_the_largest():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    model[1].weight.grad.fill_(3e38)  # finite, but its square is not
    norm, finite = clip_and_measure(model.parameters(), None)
    assert not finite and first_non_finite(model) is None
    from hpo.trainable.gradients import non_finite_gradient

    message = str(non_finite_gradient(model, norm.item(), 1, 1))
    assert "every gradient is finite, the largest is in 1.weight (3e+38)" in message


def test_clipping_leaves_non_finite_gradients_to_be_found_and_clips_finite_ones():
    model = nn.Linear(3, 1)
    model.weight.grad = torch.tensor([[3.0, 4.0, 0.0]])
    model.bias.grad = torch.tensor([math.nan])
    norm, finite = clip_and_measure(model.parameters(), 1.0)
    assert not finite and first_non_finite(model) == ("bias", "nan")
    assert model.weight.grad.tolist() == [[3.0, 4.0, 0.0]]  # untouched, not scaled to NaN
    model.bias.grad = torch.tensor([0.0])
    norm, finite = clip_and_measure(model.parameters(), 1.0)
    assert finite and norm.item() == pytest.approx(5.0)
    torch.testing.assert_close(model.weight.grad, torch.tensor([[0.6, 0.8, 0.0]]))


def test_amp_skipped_steps_are_counted_not_failures_and_survive_a_resume(tmp_path):
    blows = {2, STEPS_PER_EPOCH + 1, STEPS_PER_EPOCH + 4}
    pipeline = _amp_on_cpu(_pipeline(lambda: BlowingUp(blows)))
    first, second = pipeline.fit_epoch(), pipeline.fit_epoch()
    assert (first["amp_skipped_steps"], second["amp_skipped_steps"]) == (1, 3)
    # The skipped steps' infinite norms are not averaged into grad_norm.
    assert math.isfinite(first["grad_norm"]) and math.isfinite(second["grad_norm"])
    assert pipeline.scaler.get_scale() == 2.0**8 / 2**3  # halved once per skipped step
    assert all(bool(torch.isfinite(p).all()) for p in pipeline.model.parameters())

    save_checkpoint(pipeline.state_dict(), tmp_path)
    resumed = _amp_on_cpu(_pipeline(lambda: BlowingUp(set())))
    resumed.load_state_dict(load_checkpoint(tmp_path))
    assert resumed.fit_epoch()["amp_skipped_steps"] == 3  # the trial's count goes on


def test_a_checkpoint_without_the_count_loads_as_none_skipped(tmp_path):
    pipeline = _amp_on_cpu(_pipeline(lambda: BlowingUp(set())))
    pipeline.fit_epoch()
    state = pipeline.state_dict()
    del state["amp_skipped_steps"]  # as written before the count existed
    resumed = _amp_on_cpu(_pipeline(lambda: BlowingUp(set())))
    resumed.load_state_dict(state)
    assert resumed.amp_skipped_steps == 0


def test_skipped_steps_are_read_from_the_scale():
    assert skipped_step(1024.0, 512.0) and not skipped_step(1024.0, 1024.0)
    assert not skipped_step(1024.0, 2048.0)  # grown after growth_interval clean steps


def test_detect_anomaly_names_the_backward_op_and_stays_a_configuration_failure():
    # Without anomaly mode: the first parameter whose gradient is NaN.
    with pytest.raises(FloatingPointError, match=r"^the gradient of body\.weight became nan"):
        _pipeline(WhereSqrt).fit_epoch()
    # With it: the op, from torch's own message (which `_ANOMALY` must still match).
    with (
        pytest.warns(UserWarning, match="Error detected in SqrtBackward0"),
        pytest.raises(
            FloatingPointError,
            match=r"^autograd's anomaly mode found a NaN in epoch 1: Function 'SqrtBackward0'",
        ),
    ):
        _pipeline(WhereSqrt, detect_anomaly=True).fit_epoch()
    assert not torch.is_anomaly_enabled()  # only around the epoch's training


def test_a_finite_run_reports_as_before_and_anomaly_mode_changes_no_number():
    plain = [m for m in _pipeline(lambda: BlowingUp(set())).run()]
    watched = [m for m in _pipeline(lambda: BlowingUp(set()), detect_anomaly=True).run()]
    measured = {"epoch_time_s", "inference_ms", "peak_memory_mb"}  # the machine's, not training's
    drop_time = lambda ms: [{k: v for k, v in m.items() if k not in measured} for m in ms]  # noqa: E731
    assert drop_time(plain) == drop_time(watched)


class AmpDigits(Pipeline):
    """hpo's digits with the loss scaler on and gradients that overflow on steps 2 and 5."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        _amp_on_cpu(self)

    def setup_model(self) -> None:
        self.model = BlowingUp({2, 5}, inputs=64, outputs=10)


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session", "workdir")
def test_a_searched_amp_trial_completes_and_stores_its_skipped_steps():
    from tests.conftest import tiny_spec

    spec = tiny_spec(
        name="amp-skips",
        training={"epochs": 2, "batch_size": 512},  # 3 steps an epoch (1437 samples)
        space={"optimizer.lr": {"type": "categorical", "choices": [3e-3]}},
        searcher="grid",
        budget={},
    )
    trials = hpo.tune(AmpDigits, spec).trials()
    assert list(trials["status"]) == ["COMPLETED"]
    assert list(trials["final.amp_skipped_steps"]) == [2]
