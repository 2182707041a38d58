"""Gradients that turn NaN or infinite: named when they fail a trial, counted when AMP skips them.

Without a loss scaler, one optimizer step on a non-finite gradient makes every weight NaN, so
the trial fails at that step (a `FloatingPointError`: a configuration's fault, which fail-fast
does not count), naming the first parameter whose gradient is NaN or infinite, the epoch and
the step. This is the PyTorch guide's `check_nan_gradients`, as the trial's stored reason.

With fp16's loss scaler, an infinite gradient is expected now and then: the scaler skips that
step and lowers its scale. Such steps are counted (`amp_skipped_steps`), not failures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["clip_and_measure", "first_non_finite", "non_finite_gradient", "skipped_step"]

_HINT = (
    "; try a lower optimizer.lr or training.grad_clip_norm, or set training.detect_anomaly: "
    "true to name the operation that made it"
)


def clip_and_measure(
    parameters: Iterable[nn.Parameter], max_norm: float | None
) -> tuple[torch.Tensor, bool]:
    """The gradients' total norm, measured before clipping them to `max_norm` (None: no
    clipping), and whether it is finite.

    Unlike `clip_grad_norm_`, a non-finite norm leaves the gradients as they are (it would
    scale them all to NaN), so that the parameter where it started can still be found. The
    check waits for the device once per step, as the loss scaler's own does.
    """
    every = list(parameters)
    params = [p for p in every if p.grad is not None]
    if not params:  # on the model's device, to be stacked with the other steps' norms
        return torch.zeros((), device=every[0].device if every else None), True
    norm = nn.utils.get_total_norm([p.grad for p in params])
    finite = bool(torch.isfinite(norm))
    if max_norm is not None and finite:
        nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return norm, finite


def first_non_finite(model: nn.Module) -> tuple[str, str] | None:
    """The first parameter (in `named_parameters` order) whose gradient is NaN or infinite,
    and what it holds ("nan", "inf" or "-inf"); None when every gradient is finite."""
    for name, param in model.named_parameters():
        grad = param.grad
        if grad is None or bool(torch.isfinite(grad).all()):
            continue
        bad = grad[~torch.isfinite(grad)]
        value = float(bad[0])
        return name, "nan" if math.isnan(value) else str(value)
    return None


def non_finite_gradient(model: nn.Module, norm: float, epoch: int, step: int) -> FloatingPointError:
    """The error that fails a trial whose gradient norm is `norm` (NaN or infinite).

    Args:
        model: the model, its gradients not yet stepped on nor cleared.
        norm: the gradients' total norm.
        epoch: the epoch (from 1).
        step: the epoch's optimizer step (from 1).
    """
    found = first_non_finite(model)
    where = f"in epoch {epoch}, step {step}"
    if found is None:  # finite gradients whose squares overflow: name the largest
        name, largest = _largest_gradient(model)
        return FloatingPointError(
            f"the gradient norm became {norm} {where}: every gradient is finite, the largest "
            f"is in {name} ({largest:.3g}){_HINT}"
        )
    name, value = found
    return FloatingPointError(
        f"the gradient of {name} became {value} {where} (gradient norm {norm}){_HINT}"
    )


def _largest_gradient(model: nn.Module) -> tuple[str, float]:
    """The parameter with the largest gradient entry (in magnitude), and that entry."""
    sizes = [
        (name, float(param.grad.abs().max()))
        for name, param in model.named_parameters()
        if param.grad is not None and param.grad.numel()
    ]
    return max(sizes, key=lambda size: size[1], default=("no parameter", 0.0))


def skipped_step(scale_before: float, scale_after: float) -> bool:
    """Whether the loss scaler skipped the step just taken: it lowers its scale after a step
    with infinite or NaN gradients, and only then."""
    return scale_after < scale_before
