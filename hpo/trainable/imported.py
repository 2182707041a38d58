"""Optimizers and LR schedulers named by import path, checked against their own signatures.

`optimizer: {name: torch.optim.NAdam, lr: 1e-3, momentum_decay: 4e-3}` and
`lr_scheduler: {name: mypkg.sched:WarmupCosineScheduler, warmup_epochs: 5, max_epochs: 50}`
name a class; the section's other keys are its keyword arguments. What a class accepts is read
from its signature, once, here: `hpo validate` reports a path that does not import, a class of
the wrong kind and a keyword it does not take, each with the keywords it does take; a trial
building the class raises the same messages.

Nothing here imports torch: a class that subclasses torch's has imported it already, and is
told by `sys.modules`.
"""

from __future__ import annotations

import enum
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hpo._registry import closest
from hpo.trainable.user_code import load_import_path

Section = Literal["optimizer", "lr_scheduler"]

# A parameter of `step` with one of these in its name counts periods (the guide's
# `step(epoch)`); any other required parameter is the metric (`ReduceLROnPlateau.step(metrics)`).
_COUNTER_WORDS = ("epoch", "step", "iter")


def is_import_path(name: str) -> bool:
    """Whether an optimizer's or LR scheduler's `name` is an import path, not a registered name
    (registered names have neither dots nor colons)."""
    return "." in name or ":" in name


class StepTakes(enum.Enum):
    """What a scheduler's `step` is called with, told by its signature."""

    NOTHING = "nothing"  # step(): torch's schedulers (their `epoch=None` is deprecated)
    METRIC = "metric"  # step(metric): ReduceLROnPlateau and the like, fed the spec's metric
    COUNT = "count"  # step(epoch): the periods done so far, the guide's WarmupCosineScheduler


@dataclass(frozen=True)
class Signature:
    """What a class by import path accepts: the keywords after its first argument (the
    optimizer, or the parameters), those it requires, and whether it takes any (`**kwargs`)."""

    accepted: tuple[str, ...]
    required: tuple[str, ...]
    any_keyword: bool

    def accepts(self, key: str) -> bool:
        return self.any_keyword or key in self.accepted

    def listed(self) -> str:
        """ "it accepts: gamma, last_epoch" (or that it takes any keyword)."""
        if self.any_keyword:
            return "it accepts any keyword (**kwargs)"
        return f"it accepts: {', '.join(self.accepted)}" if self.accepted else "it accepts none"


def signature_of(cls: type) -> Signature:
    """The keywords `cls(first, **kwargs)` accepts (a class without a readable signature, a
    builtin, is taken to accept any)."""
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return Signature((), (), True)
    named = [
        p
        for p in parameters[1:]
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    return Signature(
        tuple(p.name for p in named),
        tuple(p.name for p in named if p.default is inspect.Parameter.empty),
        any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters),
    )


def step_takes(cls: type) -> StepTakes:
    """What `cls().step` is called with: nothing, when its first parameter has a default (or
    it has none); the periods done, when that parameter is named for them (`epoch`, `step`,
    `iteration`); else the monitored metric."""
    try:
        parameters = list(inspect.signature(cls.step).parameters.values())  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return StepTakes.NOTHING
    positional = [
        p
        for p in parameters[1:]  # `self`
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if not positional or positional[0].default is not inspect.Parameter.empty:
        return StepTakes.NOTHING
    name = positional[0].name.lower()
    return StepTakes.COUNT if any(w in name for w in _COUNTER_WORDS) else StepTakes.METRIC


def load_class(section: Section, name: str) -> type:
    """The optimizer or LR scheduler class `name` imports as.

    Raises:
        ImportError: the path does not import (the message names the closest module or
            attribute).
        TypeError: it is not a class of the section's kind.
    """
    target = load_import_path(name)
    problem = _wrong_kind(section, name, target)
    if problem:
        raise TypeError(problem)
    return target  # type: ignore[return-value]


def problems(
    section: Section,
    name: str,
    kwargs: Mapping[str, Any],
    *,
    given_by_hpo: Mapping[str, Any] | None = None,
    interval: str = "epoch",
) -> list[tuple[str | None, str]]:
    """What is wrong with building `name` with `kwargs`: (the key at fault, or None for
    `name` itself, the message).

    Args:
        section: `optimizer` or `lr_scheduler`.
        name: the class's import path.
        kwargs: the section's keys that are the class's keyword arguments.
        given_by_hpo: keywords hpo passes itself (an optimizer's `lr`), set where the class
            accepts them; they are not required of the user.
        interval: an LR scheduler's `interval` (`epoch` or `step`).
    """
    try:
        cls = load_class(section, name)
    except (ImportError, TypeError, ValueError) as exc:
        return [(None, f"cannot use {name!r} as {_KIND[section]}: {exc}")]
    signature = signature_of(cls)
    found: list[tuple[str | None, str]] = []
    for key in kwargs:
        if not signature.accepts(key):
            found.append(
                (
                    key,
                    f"{cls.__name__} takes no keyword argument {key!r}"
                    f"{closest(key, signature.accepted) or ';'} {signature.listed()}",
                )
            )
    given = given_by_hpo or {}
    missing = [k for k in signature.required if k not in kwargs and k not in given]
    if missing:
        found.append(
            (
                None,
                f"{cls.__name__} needs {', '.join(missing)}; set "
                f"{', '.join(f'{section}.{k}' for k in missing)} ({signature.listed()})",
            )
        )
    if section == "lr_scheduler" and interval == "step" and step_takes(cls) is StepTakes.METRIC:
        found.append(
            (
                "interval",
                f"{cls.__name__}.step takes the metric, which is known once per epoch; "
                "use interval: epoch",
            )
        )
    return found


def raise_problems(section: Section, found: list[tuple[str | None, str]]) -> None:
    """Raise the problems `problems` found (in a trial: `hpo validate` reports them first).

    Raises:
        ValueError: one message, each problem with its key.
    """
    if found:
        raise ValueError("; ".join(f"{section}.{k}: {m}" if k else m for k, m in found))


def accepting(cls: type, wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The items of `wanted` that `cls` accepts as keywords."""
    signature = signature_of(cls)
    return {key: value for key, value in wanted.items() if signature.accepts(key)}


_KIND = {"optimizer": "an optimizer", "lr_scheduler": "an LR scheduler"}


def _wrong_kind(section: Section, name: str, target: Callable[..., Any]) -> str | None:
    """Why `target` is not a class of the section's kind, or None."""
    torch = sys.modules.get("torch")
    optimizer_base = torch.optim.Optimizer if torch is not None else None
    is_optimizer = (
        isinstance(target, type)
        and optimizer_base is not None
        and issubclass(target, optimizer_base)
    )
    what = type(target).__name__ if not isinstance(target, type) else f"class {target.__name__}"
    if section == "optimizer":
        if is_optimizer:
            return None
        return (
            f"{name!r} is a {what}, not an optimizer; expected a subclass of "
            "torch.optim.Optimizer, such as torch.optim.SGD or your own"
        )
    if isinstance(target, type) and not is_optimizer and callable(getattr(target, "step", None)):
        return None
    why = "an optimizer, not an LR scheduler" if is_optimizer else f"a {what} without step()"
    return (
        f"{name!r} is {why}; expected a class made as Class(optimizer, **kwargs) with a step() "
        "method, such as torch.optim.lr_scheduler.ExponentialLR or your own"
    )
