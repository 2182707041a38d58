"""Learning-rate schedulers by name or by import path, stepped per optimizer step or per
epoch as each needs.

torch is imported inside the builders, so that the config module can read the registry's
names without importing torch. A plugin adds a builder through the `hpo.lr_schedulers` entry
point group; any other scheduler class is named by its import path (`ImportedSchedule`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo._registry import Registry
from hpo.trainable import imported
from hpo.trainable.imported import StepTakes
from hpo.types import Mode

if TYPE_CHECKING:
    import torch

    from hpo.trainable.config import LRSchedulerConfig


@dataclass(frozen=True)
class Plan:
    """What a scheduler needs to know of the training ahead of it."""

    epochs: int
    steps_per_epoch: int  # optimizer steps, after gradient accumulation
    mode: Mode  # the monitored metric's direction (plateau)


class LRSchedule:
    """One LR scheduler and when to step it; `none` is a schedule that never changes."""

    def __init__(self, scheduler: Any = None, *, per_step: bool = False, on_metric: bool = False):
        self.scheduler = scheduler
        self.per_step = per_step
        self.on_metric = on_metric

    def after_step(self) -> None:
        """Called after every optimizer step."""
        if self.scheduler is not None and self.per_step:
            self.scheduler.step()

    def after_epoch(self, monitored: float) -> None:
        """Called after every epoch's validation, with the monitored metric's value."""
        if self.scheduler is None or self.per_step:
            return
        if self.on_metric:
            self.scheduler.step(monitored)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


class ImportedSchedule(LRSchedule):
    """A scheduler class by import path, stepped after every epoch or optimizer step (its
    `interval`) with what its `step` takes: nothing, the monitored metric, or the periods
    done so far (the guide's `step(epoch)`, first called with 0 when it is made, as torch's
    schedulers set the first period's rate when they are made)."""

    def __init__(self, scheduler: Any, *, per_step: bool, takes: StepTakes):
        super().__init__(scheduler, per_step=per_step, on_metric=takes is StepTakes.METRIC)
        self.takes = takes
        self.periods = 0
        if takes is StepTakes.COUNT:
            scheduler.step(0)

    def after_step(self) -> None:
        if self.per_step:
            self._step(None)

    def after_epoch(self, monitored: float) -> None:
        if not self.per_step:
            self._step(monitored)

    def _step(self, monitored: float | None) -> None:
        self.periods += 1
        if self.takes is StepTakes.METRIC:
            self.scheduler.step(monitored)
        elif self.takes is StepTakes.COUNT:
            self.scheduler.step(self.periods)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"periods": self.periods, "scheduler": _state_of(self.scheduler)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.periods = int(state["periods"])
        if callable(getattr(self.scheduler, "load_state_dict", None)):
            self.scheduler.load_state_dict(state["scheduler"])
        else:
            vars(self.scheduler).update(state["scheduler"])


def _state_of(scheduler: Any) -> dict[str, Any]:
    """A scheduler's state: its `state_dict()`, or, for a class without one (the guide's),
    its plain attributes other than the optimizer, as torch's own `state_dict` does. Only
    plain data: checkpoints load as weights only."""
    if callable(getattr(scheduler, "state_dict", None)):
        return scheduler.state_dict()
    return {k: v for k, v in vars(scheduler).items() if k != "optimizer" and _plain(v)}


def _plain(value: Any) -> bool:
    if isinstance(value, bool | int | float | str | type(None)):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


Builder = Callable[["LRSchedulerConfig", "torch.optim.Optimizer", Plan], LRSchedule]

# The keys every LR scheduler reads; each registered one names the others it reads.
COMMON_OPTIONS = frozenset({"name"})

# name -> builder; the spec's `lr_scheduler.name` is checked against these names. A plugin's
# builder may read any key of the LR scheduler config (None).
LR_SCHEDULERS: Registry[Builder] = Registry(
    "LR scheduler",
    group="hpo.lr_schedulers",
    plugin_options=None,
    accepts=Callable,  # type: ignore[arg-type]
)


@LR_SCHEDULERS.register("none", description="a constant learning rate")
def _none(cfg: LRSchedulerConfig, optimizer: torch.optim.Optimizer, plan: Plan) -> LRSchedule:
    return LRSchedule()


@LR_SCHEDULERS.register(
    "step", options={"step_size", "gamma"}, description="decay by gamma every step_size epochs"
)
def _step(cfg: LRSchedulerConfig, optimizer: torch.optim.Optimizer, plan: Plan) -> LRSchedule:
    from torch.optim.lr_scheduler import StepLR

    return LRSchedule(StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma))


@LR_SCHEDULERS.register("exponential", options={"gamma"}, description="decay by gamma every epoch")
def _exponential(
    cfg: LRSchedulerConfig, optimizer: torch.optim.Optimizer, plan: Plan
) -> LRSchedule:
    from torch.optim.lr_scheduler import ExponentialLR

    return LRSchedule(ExponentialLR(optimizer, gamma=cfg.gamma))


@LR_SCHEDULERS.register(
    "cosine_restarts",
    options={"T_0", "T_mult", "eta_min"},
    description="cosine annealing to eta_min, restarting after T_0 epochs, then T_0*T_mult, ...",
)
def _cosine_restarts(
    cfg: LRSchedulerConfig, optimizer: torch.optim.Optimizer, plan: Plan
) -> LRSchedule:
    from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts

    return LRSchedule(
        CosineAnnealingWarmRestarts(optimizer, T_0=cfg.T_0, T_mult=cfg.T_mult, eta_min=cfg.eta_min)
    )


@LR_SCHEDULERS.register(
    "cosine", options={"min_lr"}, description="cosine annealing to min_lr over the training"
)
def _cosine(cfg: LRSchedulerConfig, optimizer: torch.optim.Optimizer, plan: Plan) -> LRSchedule:
    from torch.optim.lr_scheduler import CosineAnnealingLR

    return LRSchedule(CosineAnnealingLR(optimizer, T_max=plan.epochs, eta_min=cfg.min_lr))


@LR_SCHEDULERS.register(
    "plateau",
    options={"factor", "patience", "min_lr"},
    description="decay by factor when the metric stops improving",
)
def _plateau(cfg: LRSchedulerConfig, optimizer: torch.optim.Optimizer, plan: Plan) -> LRSchedule:
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    scheduler = ReduceLROnPlateau(
        optimizer, mode=plan.mode.value, factor=cfg.factor, patience=cfg.patience, min_lr=cfg.min_lr
    )
    return LRSchedule(scheduler, on_metric=True)


@LR_SCHEDULERS.register(
    "onecycle", options={"pct_start"}, description="one cycle up to optimizer.lr and down, per step"
)
def _onecycle(cfg: LRSchedulerConfig, optimizer: torch.optim.Optimizer, plan: Plan) -> LRSchedule:
    from torch.optim.lr_scheduler import OneCycleLR

    # The optimizer's lr is the peak, so searching `optimizer.lr` searches the peak.
    peak = [group["lr"] for group in optimizer.param_groups]
    scheduler = OneCycleLR(
        optimizer,
        max_lr=peak,
        total_steps=plan.epochs * plan.steps_per_epoch,
        pct_start=cfg.pct_start,
    )
    return LRSchedule(scheduler, per_step=True)


@LR_SCHEDULERS.register(
    "warmup_cosine",
    options={"warmup_epochs", "min_lr"},
    description="linear warmup, then cosine annealing to min_lr",
)
def _warmup_cosine(
    cfg: LRSchedulerConfig, optimizer: torch.optim.Optimizer, plan: Plan
) -> LRSchedule:
    from torch.optim.lr_scheduler import LambdaLR

    total = plan.epochs * plan.steps_per_epoch
    warmup = min(total, round(cfg.warmup_epochs * plan.steps_per_epoch))
    base = optimizer.param_groups[0]["lr"]
    floor = min(cfg.min_lr / base, 1.0)

    # A closure, not a callable object: LambdaLR then saves no function in its state, and
    # the state loads with `weights_only=True`.
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return LRSchedule(LambdaLR(optimizer, factor), per_step=True)


def build_lr_schedule(
    cfg: LRSchedulerConfig, optimizer: torch.optim.Optimizer, plan: Plan
) -> LRSchedule:
    """The configured LR schedule for `optimizer` over the training `plan`.

    Raises:
        ValueError: a class by import path that does not import, is not a scheduler, or does
            not take the section's keys (what `hpo validate` reports).
    """
    if not imported.is_import_path(cfg.name):
        return LR_SCHEDULERS[cfg.name](cfg, optimizer, plan)
    kwargs = cfg.kwargs()
    imported.raise_problems("lr_scheduler", imported_problems(cfg))
    cls = imported.load_class("lr_scheduler", cfg.name)
    takes = imported.step_takes(cls)
    if takes is StepTakes.METRIC and "mode" not in kwargs:
        # ReduceLROnPlateau's default `min` would fight a metric to maximise.
        kwargs |= imported.accepting(cls, {"mode": plan.mode.value})
    return ImportedSchedule(cls(optimizer, **kwargs), per_step=cfg.interval == "step", takes=takes)


def imported_problems(
    cfg: LRSchedulerConfig, searched: Iterable[str] = ()
) -> list[tuple[str | None, str]]:
    """What is wrong with a scheduler class by import path and its keys (see
    `imported.problems`); `searched` keys of the section are checked as keyword arguments too.
    """
    kwargs = dict.fromkeys(searched) | cfg.kwargs()
    return imported.problems("lr_scheduler", cfg.name, kwargs, interval=cfg.interval)
