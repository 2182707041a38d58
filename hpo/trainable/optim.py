"""Optimizers by name: each builder takes the optimizer config and the parameters to train.

torch is imported inside the builders, so that the config module can read the registry's
names without importing torch. A plugin adds a builder through the `hpo.optimizers` entry
point group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hpo._registry import Registry

if TYPE_CHECKING:
    import torch

    from hpo.trainable.config import OptimizerConfig

Builder = Callable[["OptimizerConfig", Iterable[Any]], "torch.optim.Optimizer"]

# The keys every optimizer reads; each registered one names the others it reads.
COMMON_OPTIONS = frozenset({"name", "lr", "weight_decay"})

# name -> builder; the spec's `optimizer.name` is checked against these names. A plugin's
# builder may read any key of the optimizer config (None).
OPTIMIZERS: Registry[Builder] = Registry(
    "optimizer",
    group="hpo.optimizers",
    plugin_options=None,
    accepts=Callable,  # type: ignore[arg-type]
)


@OPTIMIZERS.register(
    "sgd", options={"momentum", "nesterov"}, description="stochastic gradient descent"
)
def _sgd(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    import torch

    return torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )


@OPTIMIZERS.register("adam", description="Adam, its weight decay an L2 term of the gradient")
def _adam(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    import torch

    # Adam's weight decay is L2 added to the gradient; AdamW decouples it (usually better).
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("adamw", description="Adam with decoupled weight decay")
def _adamw(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    import torch

    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("rmsprop", options={"momentum"}, description="RMSprop")
def _rmsprop(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    import torch

    return torch.optim.RMSprop(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


def build_optimizer(cfg: OptimizerConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    """The configured optimizer over `params`."""
    return OPTIMIZERS[cfg.name](cfg, params)
