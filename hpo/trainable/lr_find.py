"""The learning-rate range test (the PyTorch guide's `find_lr`), through a trial's own Pipeline.

The rate rises exponentially from `min_lr` to `max_lr`, one step per optimizer step, while
the pipeline trains as a trial would: its data, model, loss, optimizer, mixed precision and
gradient accumulation, through its own `train_epoch` (a subclass's override included). The
loss of each step is read where the pipeline computes it (its `criterion`), smoothed with a
bias-corrected moving average, and the test stops when the smoothed loss passes `diverge`
times its best, or a loss is NaN.

It runs in this process, without Ray, on a fresh pipeline (fresh model, data order and
seeds); the global random generators are restored afterwards and nothing is written.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hpo.trainable.config import TrainableConfig
from hpo.trainable.data import Dataset
from hpo.trainable.lr_suggest import Suggestions, smooth, suggest
from hpo.trainable.pipeline import Pipeline
from hpo.trainable.schedules import LRSchedule

__all__ = ["LRFindResult", "find_lr"]


@dataclass(frozen=True)
class LRFindResult:
    """The range test's curve: per optimizer step, its rate, its loss and the smoothed loss.

    Attributes:
        lrs: the learning rate of each step (of the first parameter group).
        losses: each step's training loss (the mean over its batches).
        smoothed: the bias-corrected moving average of `losses`.
        stopped: why the test ended: "diverged" (the smoothed loss passed `diverge` times
            its best), "nan" (a loss was NaN or infinite; that step is not in the curve)
            or "max_lr" (the ramp reached its end).
        stop_lr: the rate of the step that ended the test.
        seconds: the test's wall time, the pipeline's set-up included.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stopped: str
    stop_lr: float
    seconds: float

    def suggestions(self) -> Suggestions:
        """The steepest descent, the valley and the proposed range (see `lr_suggest`).

        They read the raw losses through centred filters, not the moving average: that
        average lags by about beta / (1 - beta) steps (49 at 0.98, four decades of the
        default ramp), which would move both suggestions to higher rates.

        Raises:
            ValueError: the curve is too short, or never falls.
        """
        return suggest(self.lrs, self.losses)


class _Stop(Exception):
    """Ends the range test from inside the pipeline's `train_epoch`."""


class _LossRecorder:
    """The pipeline's loss function, also noting each loss it returns (what a step trains on)."""

    def __init__(self, criterion: Any):
        self.criterion = criterion
        self.total = 0.0
        self.count = 0

    def __call__(self, outputs: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
        loss = self.criterion(outputs, target, *args, **kwargs)
        size = len(target) if hasattr(target, "__len__") else 1
        self.total += float(loss.detach().float()) * size
        self.count += size
        return loss

    def take(self) -> float | None:
        """The mean loss since the last call (None when the criterion was not called)."""
        if not self.count:
            return None
        mean, self.total, self.count = self.total / self.count, 0.0, 0
        return mean


def find_lr(
    config: TrainableConfig | dict[str, Any],
    *,
    pipeline: type[Pipeline] = Pipeline,
    dataset: Dataset | None = None,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.98,
    diverge: float = 4.0,
) -> LRFindResult:
    """Run the learning-rate range test on `config`, as a trial of `pipeline` would train.

    The training loader is cycled (epoch after epoch) when it has fewer batches than
    `steps`. The pipeline's own LR schedule is switched off: each step sets the rate of
    every parameter group itself (a group keeps its ratio to the first group's rate).

    Args:
        config: the trainable's config (a spec's `base_config()`).
        pipeline: the Pipeline subclass a trial runs (hpo's own by default).
        dataset: the in-memory dataset loaded in the driver (None: the pipeline loads it).
        min_lr, max_lr: the ramp's first and last rate.
        steps: the optimizer steps of the whole ramp.
        smoothing: the moving average's beta (0 keeps the raw losses).
        diverge: stop when the smoothed loss passes this many times its best.

    Raises:
        ValueError: bad arguments.
        RuntimeError: the pipeline's training never called its `criterion`, or its
            optimizer steps left the model's parameters as they were (a flat curve would
            mislead: Lightning-AI/pytorch-lightning#2814).
    """
    if not 0 < min_lr < max_lr:
        raise ValueError(f"0 < min_lr < max_lr must hold, but got ({min_lr=}, {max_lr=})")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    if diverge <= 1:
        raise ValueError(f"diverge must be above 1, got {diverge}")
    started = time.perf_counter()
    saved = _rng_states()
    try:
        trainer = pipeline(config, dataset)
        ramp = min_lr * (max_lr / min_lr) ** (np.arange(steps) / (steps - 1))
        lrs, losses, stopped = _ramp(trainer, ramp, smoothing, diverge)
    finally:
        _restore_rng_states(saved)
    smoothed = smooth(losses, smoothing) if losses else np.array([])
    stop_lr = float(ramp[min(len(lrs) if stopped == "nan" else len(lrs) - 1, steps - 1)])
    return LRFindResult(
        lrs, losses, [float(v) for v in smoothed], stopped, stop_lr, time.perf_counter() - started
    )


def _ramp(
    trainer: Pipeline, ramp: np.ndarray, beta: float, diverge: float
) -> tuple[list[float], list[float], str]:
    """Train `trainer` along `ramp`, one rate per optimizer step, until it ends or diverges."""
    optimizer = trainer.optimizer
    # The pipeline's schedule would move the rate between our steps (and a one-cycle schedule
    # refuses to step past its planned end).
    trainer._lr_schedule = LRSchedule()
    trainer.scheduler = None
    recorder = _LossRecorder(trainer.criterion)
    trainer.criterion = recorder
    first = optimizer.param_groups[0]["lr"]
    ratios = [group["lr"] / first if first > 0 else 1.0 for group in optimizer.param_groups]
    fingerprint = _fingerprint(trainer.model)
    lrs: list[float] = []
    losses: list[float] = []
    state = {"average": 0.0, "best": math.inf, "stopped": "max_lr"}

    def before_step(opt: torch.optim.Optimizer, *_: Any) -> None:
        lr = float(ramp[len(lrs)])
        for group, ratio in zip(opt.param_groups, ratios, strict=True):
            group["lr"] = lr * ratio

    def after_step(opt: torch.optim.Optimizer, *_: Any) -> None:
        loss = recorder.take()
        if loss is None:
            raise RuntimeError(
                f"{type(trainer).__name__}.train_epoch stepped the optimizer without calling "
                "self.criterion; lr-find reads each step's loss there"
            )
        if not math.isfinite(loss):
            state["stopped"] = "nan"
            raise _Stop
        lrs.append(float(ramp[len(lrs)]))
        losses.append(loss)
        i = len(losses)
        state["average"] = beta * state["average"] + (1 - beta) * loss
        smoothed = state["average"] / (1 - beta**i)
        if i > 1 and smoothed > diverge * state["best"]:
            state["stopped"] = "diverged"
            raise _Stop
        state["best"] = min(state["best"], smoothed)
        if i == len(ramp):
            raise _Stop

    hooks = [
        optimizer.register_step_pre_hook(before_step),
        optimizer.register_step_post_hook(after_step),
    ]
    epoch = 0
    try:
        while True:
            epoch += 1
            done = len(lrs)
            trainer.train_epoch(epoch)  # again and again: cycles a loader shorter than the ramp
            if len(lrs) == done:
                raise RuntimeError(
                    f"epoch {epoch} of {type(trainer).__name__}.train_epoch took no optimizer "
                    "step; lr-find needs steps to raise the rate"
                )
    except _Stop:
        pass
    finally:
        for hook in hooks:
            hook.remove()
    if lrs and torch.equal(fingerprint, _fingerprint(trainer.model)):
        raise RuntimeError(
            f"{len(lrs)} optimizer steps left the model's parameters as they were: a flat "
            "curve would mislead. Check that the optimizer holds the model's parameters "
            "and that they require gradients"
        )
    return lrs, losses, str(state["stopped"])


def _fingerprint(model: torch.nn.Module) -> torch.Tensor:
    """A cheap summary of the parameters (one sum each) that any optimizer step changes."""
    sums = [p.detach().double().sum() for p in model.parameters() if p.requires_grad]
    return torch.stack(sums).cpu() if sums else torch.zeros(0, dtype=torch.float64)


def _rng_states() -> dict[str, Any]:
    """The global generators' states: the pipeline seeds them, the caller's must not move."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
    }


def _restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None:
        torch.cuda.set_rng_state_all(states["cuda"])
