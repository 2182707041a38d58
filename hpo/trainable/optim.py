"""Optimizers by name or by import path: each builder takes the optimizer config and the
parameters to train (or their groups: `no_decay` leaves biases and normalisation weights out
of weight decay).

torch is imported inside the builders, so that the config module can read the registry's
names without importing torch. A plugin adds a builder through the `hpo.optimizers` entry
point group; any other `torch.optim.Optimizer` class is named by its import path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from hpo._registry import Registry
from hpo.trainable import imported

if TYPE_CHECKING:
    import torch
    from torch import nn

    from hpo.trainable.config import OptimizerConfig

Builder = Callable[["OptimizerConfig", Iterable[Any]], "torch.optim.Optimizer"]

# The keys every optimizer reads; each registered one names the others it reads.
COMMON_OPTIONS = frozenset({"name", "lr", "weight_decay", "no_decay"})

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


def build_optimizer(
    cfg: OptimizerConfig, params: nn.Module | Iterable[Any]
) -> torch.optim.Optimizer:
    """The configured optimizer over `params`: a model (whose parameters `no_decay` splits
    into groups), or its parameters or parameter groups.

    Raises:
        ValueError: `no_decay` without the model to tell biases and norm layers in; a class
            by import path that does not import, is not an optimizer, or does not take the
            section's keys (what `hpo validate` reports).
    """
    from torch import nn

    if isinstance(params, nn.Module):
        params = parameter_groups(params, cfg.no_decay)
    elif cfg.no_decay:
        raise ValueError(
            "optimizer.no_decay needs the model to find its biases and norm layers; "
            "pass the model rather than its parameters"
        )
    if not imported.is_import_path(cfg.name):
        return OPTIMIZERS[cfg.name](cfg, params)
    imported.raise_problems("optimizer", imported_problems(cfg))
    cls = imported.load_class("optimizer", cfg.name)
    return cls(params, **imported.accepting(cls, _given_by_hpo(cfg)), **cfg.kwargs())


def parameter_groups(model: nn.Module, no_decay: Iterable[str]) -> Any:
    """The model's parameters, or, with `no_decay`, two groups: those with weight decay and
    those without (`bias`: every parameter named bias; `norm`: the parameters of every module
    whose class name has "Norm" in it, BatchNorm, LayerNorm, GroupNorm, RMSNorm and a user's
    own alike). Without `no_decay` one plain list, as optimizers saved before it hold."""
    exempt = set(no_decay)
    if not exempt:
        return model.parameters()
    decayed: list[Any] = []
    kept: list[Any] = []
    seen: set[int] = set()  # a tied parameter belongs to one group only
    for module in model.modules():
        is_norm = "Norm" in type(module).__name__
        for name, parameter in module.named_parameters(recurse=False):
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            skip = ("bias" in exempt and name == "bias") or ("norm" in exempt and is_norm)
            (kept if skip else decayed).append(parameter)
    groups = [{"params": decayed}, {"params": kept, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def imported_problems(
    cfg: OptimizerConfig, searched: Iterable[str] = ()
) -> list[tuple[str | None, str]]:
    """What is wrong with an optimizer class by import path and its keys (see
    `imported.problems`); `searched` keys of the section are checked as keyword arguments too.
    """
    kwargs = dict.fromkeys(searched) | cfg.kwargs()
    given = _given_by_hpo(cfg)
    found = imported.problems("optimizer", cfg.name, kwargs, given_by_hpo=given)
    if found:
        return found
    cls = imported.load_class("optimizer", cfg.name)
    if "weight_decay" not in imported.accepting(cls, given) and (cfg.weight_decay or cfg.no_decay):
        key = "weight_decay" if cfg.weight_decay else "no_decay"
        found.append(
            (key, f"{cls.__name__} takes no weight_decay; {imported.signature_of(cls).listed()}")
        )
    return found


def _given_by_hpo(cfg: OptimizerConfig) -> dict[str, Any]:
    """The section's own keys passed to a class by import path, where it takes them."""
    return {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
