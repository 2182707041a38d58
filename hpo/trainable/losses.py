"""Losses by name (`loss: {name: cross_entropy, label_smoothing: 0.1}`) or a user's own.

Each registered loss says which tasks it applies to, so that a spec pairing `mse` with a
classifier is refused by `hpo validate` instead of failing in every trial. torch is imported
inside the builders, as in `optim.py`: the config module reads this registry without torch.
A plugin adds a `LossKind` through the `hpo.losses` entry point group.

A built loss takes the model's outputs and the batch's targets and returns their mean over
the samples (the loop weighs batches by their size, and scales for accumulation, on that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo._registry import Registry
from hpo.trainable.data import Task
from hpo.trainable.user_code import is_reference, load_callable

if TYPE_CHECKING:
    import torch

    from hpo.trainable.config import LossConfig

LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
Builder = Callable[["LossConfig", Task, "torch.device"], LossFn]

# The keys every loss reads; each registered one names the others it reads.
COMMON_OPTIONS = frozenset({"name"})

# The loss that trains a task when the spec names none (`name: auto`).
_AUTO = {Task.CLASSIFICATION: "cross_entropy", Task.REGRESSION: "mse"}


@dataclass(frozen=True)
class LossKind:
    """A registered loss.

    Attributes:
        build: makes the loss function from the loss config, on the trial's device.
        tasks: the tasks it applies to.
    """

    build: Builder
    tasks: frozenset[Task]


# name -> LossKind; the spec's `loss.name` is checked against these names. A plugin's loss
# may read any key of the loss config (None).
LOSSES: Registry[LossKind] = Registry(
    "loss", group="hpo.losses", plugin_options=None, accepts=LossKind
)


def _register(name: str, tasks: set[Task], options: set[str], description: str) -> Any:
    def decorate(build: Builder) -> Builder:
        LOSSES.register(
            name, LossKind(build, frozenset(tasks)), options=options, description=description
        )
        return build

    return decorate


def _as_tensor(values: float | list[float] | None, device: torch.device) -> torch.Tensor | None:
    import torch

    return None if values is None else torch.as_tensor(values, dtype=torch.float32, device=device)


def _like_targets(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The outputs in the targets' shape where only a unit axis differs ((n, 1) for (n,)): a
    one-output model's predictions would otherwise broadcast against every target."""
    if outputs.shape != targets.shape and outputs.numel() == targets.numel():
        return outputs.reshape(targets.shape)
    return outputs


@_register(
    "cross_entropy",
    {Task.CLASSIFICATION},
    {"label_smoothing", "class_weights"},
    "softmax cross-entropy over k outputs; targets are class indices (or class probabilities)",
)
def _cross_entropy(cfg: LossConfig, task: Task, device: torch.device) -> LossFn:
    import torch.nn.functional as F

    weight = _as_tensor(cfg.class_weights, device)

    def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets, weight=weight, label_smoothing=cfg.label_smoothing)

    return cross_entropy


@_register(
    "bce_with_logits",
    {Task.CLASSIFICATION},
    {"pos_weight"},
    "sigmoid binary cross-entropy: binary (1 output, 0/1 targets) or multi-label "
    "(k outputs, (n, k) 0/1 targets)",
)
def _bce_with_logits(cfg: LossConfig, task: Task, device: torch.device) -> LossFn:
    import torch.nn.functional as F

    pos_weight = _as_tensor(cfg.pos_weight, device)

    def bce_with_logits(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        outputs = _like_targets(outputs, targets)
        # Integer labels (an hpo dataset's) are the 0/1 targets BCE takes as floats.
        return F.binary_cross_entropy_with_logits(
            outputs, targets.to(outputs.dtype), pos_weight=pos_weight
        )

    return bce_with_logits


def _regression(name: str, loss: Callable[..., torch.Tensor], **kwargs: Any) -> LossFn:
    def regression_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        outputs = _like_targets(outputs, targets)
        return loss(outputs, targets.to(outputs.dtype), **kwargs)

    regression_loss.__name__ = name
    return regression_loss


@_register("mse", {Task.REGRESSION}, set(), "mean squared error")
def _mse(cfg: LossConfig, task: Task, device: torch.device) -> LossFn:
    import torch.nn.functional as F

    return _regression("mse", F.mse_loss)


@_register("l1", {Task.REGRESSION}, set(), "mean absolute error")
def _l1(cfg: LossConfig, task: Task, device: torch.device) -> LossFn:
    import torch.nn.functional as F

    return _regression("l1", F.l1_loss)


@_register(
    "huber",
    {Task.REGRESSION},
    {"delta"},
    "squared below `delta`, absolute above (robust to outliers)",
)
def _huber(cfg: LossConfig, task: Task, device: torch.device) -> LossFn:
    import torch.nn.functional as F

    return _regression("huber", F.huber_loss, delta=cfg.delta)


@_register(
    "auto",
    {Task.CLASSIFICATION, Task.REGRESSION},
    {"label_smoothing", "class_weights"},
    "cross_entropy for classification, mse for regression",
)
def _auto(cfg: LossConfig, task: Task, device: torch.device) -> LossFn:
    return LOSSES[_AUTO[task]].build(cfg, task, device)


def has_default(task: Task) -> bool:
    """Whether `auto` stands for a loss of hpo's on `task` (detection has none)."""
    return task in _AUTO


def resolve(name: str, task: Task) -> str:
    """The loss a name stands for on `task`: `auto` is the task's default, others themselves."""
    return _AUTO.get(task, name) if name == "auto" else name


def loss_tasks(name: str) -> frozenset[Task]:
    """The tasks a loss applies to (every task for a user's own `module:function`)."""
    if is_reference(name):
        return frozenset(Task)
    return LOSSES[name].tasks


def build_loss(cfg: LossConfig, task: Task, device: Any) -> LossFn:
    """The configured loss: `fn(outputs, targets)`, the mean over the batch's samples.

    A user's `package.module:function` is called as it is; a `package.module:Class` (an
    `nn.Module` such as `torch.nn:SmoothL1Loss`) is instantiated without arguments first.

    Raises:
        ValueError: the loss does not apply to `task`.
        ImportError, TypeError: a user's loss that cannot be imported or called.
    """
    import torch

    device = torch.device(device)
    if is_reference(cfg.name):
        loaded: Any = load_callable(cfg.name)
        if isinstance(loaded, type):
            loaded = loaded()
            if isinstance(loaded, torch.nn.Module):
                loaded = loaded.to(device)
        return loaded
    name = cfg.name
    if name == "auto" and not has_default(task):
        # The spec accepts it: a Pipeline whose setup_optimizer sets its own criterion never
        # builds it. One that does not fails here, at the trial's start.
        raise ValueError(
            f"hpo has no {task.value} loss of its own: name yours in loss.name "
            "('package.module:function' or an nn.Module class), or set self.criterion in "
            "your Pipeline's setup_optimizer"
        )
    kind = LOSSES[name]
    if task not in kind.tasks:
        raise ValueError(
            f"loss {name!r} is for {_tasks(kind.tasks)}, not {task.value}; "
            f"choose one of: {', '.join(losses_for(task))}"
        )
    return kind.build(cfg, task, device)


def losses_for(task: Task) -> list[str]:
    """The registered losses that apply to `task`."""
    return [name for name in LOSSES if task in LOSSES[name].tasks]


def output_size(name: str, task: Task, num_outputs: int, target_shape: tuple[int, ...] = ()) -> int:
    """How many outputs the model needs for this loss.

    `bce_with_logits` takes one output per binary target: 1 when each sample's target is one
    0/1 value (`target_shape` `()`), k for multi-label targets of shape `(k,)`. Every other
    loss takes the data's own count (classes, or 1 for regression).
    """
    if resolve(name, task) == "bce_with_logits":
        return int(target_shape[-1]) if target_shape else 1
    return num_outputs


def _tasks(tasks: frozenset[Task]) -> str:
    return " and ".join(sorted(task.value for task in tasks))
