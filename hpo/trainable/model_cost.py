"""What a model costs, for trade-offs against its accuracy: its trainable parameters, its size
and the time of one forward pass (`n_params`, `model_size_mb`, `inference_ms`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

# Forward passes timed (after one untimed warm-up): enough for a stable median on a busy CPU.
TIMED_PASSES = 7


def n_params(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_size_mb(model: nn.Module) -> float:
    """The size of the model's parameters and buffers in memory, in MiB (as saved, roughly)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def inference_ms(model: nn.Module, forward: Callable[[], Any], device: torch.device) -> float:
    """The median time in milliseconds of `forward()`, a forward pass of `model` over one
    batch, in eval mode and without gradients; the model's mode is restored after."""
    training = model.training
    model.eval()
    times = []
    try:
        with torch.inference_mode():
            for i in range(TIMED_PASSES + 1):
                _synchronize(device)
                started = time.perf_counter()
                forward()
                _synchronize(device)
                if i:  # the first pass warms caches and kernels up
                    times.append((time.perf_counter() - started) * 1000)
    finally:
        model.train(training)
    return statistics.median(times)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
