"""Running out of memory in hpo's trainable: a failure that names its batch and peak, or, with
`training.on_oom: split`, the same step trained again in micro-batches."""

from __future__ import annotations

import math
import pickle
import weakref

import pytest
import torch
from torch import nn

from hpo.trainable.loop import Trainer
from hpo.trainable.memory import (
    OUT_OF_MEMORY,
    PeakMemory,
    TrialOutOfMemory,
    is_out_of_memory,
    release_memory,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class RunsOutAbove(nn.Module):
    """An MLP whose training batches above `limit` samples raise torch's OutOfMemoryError, as
    a GPU too small for their activations would; evaluation (no activations kept) fits.

    It keeps a weak reference to the last activation it made before running out, so a test
    can tell whether anything still holds the failed step's tensors.
    """

    def __init__(self, inputs: int, outputs: int, limit: float):
        super().__init__()
        self.limit = limit
        self.net = nn.Sequential(nn.Linear(inputs, 32), nn.ReLU(), nn.Linear(32, outputs))
        self.sizes: list[int] = []  # the training batches it was given
        self.failed_activation: weakref.ref | None = None

    def forward(self, x):
        hidden = self.net[1](self.net[0](x.flatten(1)))
        if self.training:
            self.sizes.append(len(x))
            if len(x) > self.limit:
                self.failed_activation = weakref.ref(hidden)
                raise torch.OutOfMemoryError(
                    f"CUDA out of memory. Tried to allocate 2.00 GiB for a batch of {len(x)}"
                )
        return self.net[2](hidden)


def runs_out_above_32(config, input_shape, output_dim):
    return RunsOutAbove(math.prod(input_shape), output_dim, 32)


def runs_out_above_4(config, input_shape, output_dim):
    return RunsOutAbove(math.prod(input_shape), output_dim, 4)


def never_runs_out(config, input_shape, output_dim):
    return RunsOutAbove(math.prod(input_shape), output_dim, math.inf)


def trainer(digits, model: str, batch_size: int, on_oom: str = "fail", **training) -> Trainer:
    return Trainer(
        {
            "model": {"name": f"{__name__}:{model}"},
            "optimizer": {"name": "sgd", "lr": 0.1},
            "lr_scheduler": {"name": "none"},
            "training": {"epochs": 2, "batch_size": batch_size, "on_oom": on_oom, **training},
        },
        digits,
        seed=3,  # not the config's: models of other names start from the same weights
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"), True),
        (MemoryError(), True),
        (TrialOutOfMemory("x", batch_size=1, micro_batches=1, peak_memory_mb=1.0), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 1.2 GB)"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("out of memory"), False),  # only the runtime's own errors
    ],
)
def test_what_counts_as_running_out_of_memory(error: BaseException, expected: bool):
    assert is_out_of_memory(error) is expected


def test_with_on_oom_fail_the_trial_fails_naming_its_batch_and_peak(digits):
    pipeline = trainer(digits, "runs_out_above_32", 64)
    with pytest.raises(TrialOutOfMemory) as info:
        pipeline.fit_epoch()
    error = info.value
    assert str(error).startswith("out of memory in epoch 1, step 1 with batch size 64, peak memory ")
    assert (
        " MB on cpu (OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB for a "
        "batch of 64); lower training.batch_size, or set training.on_oom: split"
    ) in str(error)
    assert error.error_type == OUT_OF_MEMORY
    assert (error.batch_size, error.micro_batches) == (64, 1)
    assert error.peak_memory_mb is not None and error.peak_memory_mb >= 0
    # While the error is held (as Ray holds it), the failed step's tensors are gone.
    assert pipeline.model.failed_activation is not None
    assert pipeline.model.failed_activation() is None
    assert all(p.grad is None for p in pipeline.model.parameters())


def test_with_on_oom_split_the_step_trains_in_micro_batches_as_one_batch(digits):
    split = trainer(digits, "runs_out_above_32", 64, on_oom="split")
    whole = trainer(digits, "never_runs_out", 64)
    for _ in range(2):
        cut, same = split.fit_epoch(), whole.fit_epoch()
        assert (cut["micro_batches"], same["micro_batches"]) == (2, 1)
        assert cut["effective_batch_size"] == same["effective_batch_size"] == 64
        assert cut["train_loss"] == pytest.approx(same["train_loss"], rel=1e-5)
        assert cut["val_loss"] == pytest.approx(same["val_loss"], rel=1e-5)
    for a, b in zip(split.model.parameters(), whole.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # The first step ran out once whole; from then on every batch came in two pieces.
    assert split.model.sizes[:3] == [64, 32, 32]
    assert max(split.model.sizes[1:]) <= 32
    # A trial resumed from its checkpoint goes on in two pieces, without running out first.
    resumed = trainer(digits, "runs_out_above_32", 64, on_oom="split")
    resumed.load_state_dict(split.state_dict())
    assert resumed.micro_batches == 2
    resumed.fit_epoch()
    assert resumed.model.sizes and max(resumed.model.sizes) <= 32


def test_split_doubles_the_pieces_up_to_8_then_fails(digits):
    pipeline = trainer(digits, "runs_out_above_4", 64, on_oom="split")
    with pytest.raises(TrialOutOfMemory, match="even 8 micro-batches did not fit") as info:
        pipeline.fit_epoch()
    assert "with batch size 64 in 8 micro-batches of up to 8" in str(info.value)
    assert info.value.micro_batches == 8
    assert pipeline.model.sizes == [64, 32, 16, 8]


def test_split_keeps_accumulation_and_small_batches_whole(digits):
    pipeline = trainer(digits, "runs_out_above_32", 16, on_oom="split", accumulate_batches=4)
    metrics = pipeline.fit_epoch()
    assert metrics["micro_batches"] == 1 and metrics["effective_batch_size"] == 64
    assert max(pipeline.model.sizes) == 16


def test_the_error_survives_the_trip_to_the_driver():
    error = TrialOutOfMemory("out of memory in epoch 2", batch_size=64, micro_batches=2, peak_memory_mb=5.5)
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.batch_size, again.micro_batches, again.peak_memory_mb) == (
        "out of memory in epoch 2",
        64,
        2,
        5.5,
    )


def test_every_epoch_reports_the_trials_peak_memory(digits):
    pipeline = trainer(digits, "never_runs_out", 64)
    first = pipeline.fit_epoch()
    assert first["peak_memory_mb"] >= 0 and first["micro_batches"] == 1
    assert pipeline.fit_epoch()["peak_memory_mb"] >= first["peak_memory_mb"]


def test_the_peak_on_the_cpu_is_the_growth_of_the_resident_set():
    peak = PeakMemory("cpu")
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    grown = peak.peak_mb()
    del block
    release_memory("cpu")
    assert 56 <= grown <= 96
    # A peak stays (the kernel counts resident pages lazily: to within a MiB).
    assert peak.peak_mb() >= grown - 1
    # A new trial in the same (reused) worker starts from what the process holds now.
    assert PeakMemory("cpu").peak_mb() < 16
