"""Optimizers by name: each builder takes the optimizer config and the parameters to train.

torch is imported inside the builders, so that the config module can read the registry's
names without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from hpo.trainable.config import OptimizerConfig

Builder = Callable[["OptimizerConfig", Iterable[Any]], "torch.optim.Optimizer"]


def _sgd(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    import torch

    return torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )


def _adam(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    import torch

    # Adam's weight decay is L2 added to the gradient; AdamW decouples it (usually better).
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _adamw(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    import torch

    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _rmsprop(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    import torch

    return torch.optim.RMSprop(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


# name -> builder; the spec's `optimizer.name` is checked against these keys.
OPTIMIZERS: dict[str, Builder] = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adamw,
    "rmsprop": _rmsprop,
}


def build_optimizer(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    """The configured optimizer over `params`."""
    return OPTIMIZERS[cfg.name](cfg, params)
