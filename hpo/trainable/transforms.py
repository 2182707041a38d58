"""Transforms by import path (the spec's `transforms:` section), composed into one callable.

Each item names a class or function (`albumentations.HorizontalFlip`,
`torchvision.transforms.v2.RandomResizedCrop`, `my_package.transforms:Jitter`) with its
keyword arguments. A class is instantiated with them; a function is the transform itself,
called on each sample with them. Albumentations' calling convention (`t(image=x)["image"]`)
is detected. What comes out of the composition becomes a float tensor in torch's
channels-first layout, so that a model sees the same kind of input whatever the transforms.

Only the modules the items name are imported: torchvision is never imported unless an
item names it (its wheel does not load with every build of torch).
"""

from __future__ import annotations

import importlib
import inspect
import os
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hpo._registry import closest
from hpo.trainable.user_code import load_callable

if TYPE_CHECKING:
    from hpo.trainable.config import TransformConfig

__all__ = ["Compose", "build_transform", "check_transform", "resolve", "to_tensor"]


def resolve(name: str) -> Any:
    """The class or function `name` stands for: 'package.module.Class' (the longest
    importable module prefix, then attributes) or 'package.module:Class'.

    Raises:
        ImportError: no module of the path imports, or the module lacks the attribute (the
            message names the closest attribute it has).
    """
    if ":" in name:
        return load_callable(name)
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only "this prefix is no module" means: try a shorter one. A module that is
            # there but fails to import (a missing dependency of it) fails with its reason.
            missing = exc.name or ""
            if module_name == missing or module_name.startswith(missing + "."):
                continue
            raise ImportError(f"cannot import {module_name!r} for {name!r}: {exc}") from exc
        return _attribute(module, module_name, parts[split:])
    raise ImportError(
        f"cannot import {name!r}: there is no module named {parts[0]!r}; a transform is named "
        "'package.module.Class' (e.g. 'albumentations.HorizontalFlip') or "
        "'package.module:Class', with its directory on PYTHONPATH"
    )


def _attribute(module: Any, module_name: str, attributes: list[str]) -> Any:
    target, owner = module, module_name
    for part in attributes:
        if not hasattr(target, part):
            public = [n for n in dir(target) if not n.startswith("_")]
            raise ImportError(f"module {owner!r} has no {part!r}{closest(part, public)}")
        target, owner = getattr(target, part), f"{owner}.{part}"
    return target


def check_transform(name: str) -> str | None:
    """Why `name` is not a transform, or None when it imports and is callable.

    Imports the module (never instantiates anything), for `hpo validate`: "module
    'albumentations' has no 'HorizontalFlp'; did you mean 'HorizontalFlip'?".
    """
    try:
        target = resolve(name)
    except ImportError as exc:
        return str(exc)
    except Exception as exc:  # a module that raises on import (torchvision's nms operator)
        return f"cannot import {name!r}: {type(exc).__name__}: {exc}"
    if not callable(target):
        return f"{name!r} is a {type(target).__name__}, not a class or function"
    return None


def build_transform(items: Sequence[TransformConfig]) -> Callable[[Any], Any] | None:
    """The items instantiated and composed in order, ending in `to_tensor`; None for none.

    Raises:
        ImportError: an item's name does not import.
        TypeError: an item's keyword arguments do not fit its class.
    """
    if not items:
        return None
    steps = []
    for item in items:
        target = resolve(item.name)
        kwargs = item.kwargs()
        if inspect.isclass(target):
            try:
                step = target(**kwargs)
            except TypeError as exc:
                raise TypeError(f"transform {item.name} cannot take {kwargs}: {exc}") from exc
        elif callable(target):
            step = _Bound(target, kwargs) if kwargs else target
        else:
            raise TypeError(f"transform {item.name!r} is a {type(target).__name__}, not callable")
        steps.append(step)
    return Compose(steps)


class _Bound:
    """A function with its keyword arguments (a picklable `functools.partial` with a name)."""

    def __init__(self, function: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        self.function, self.kwargs = function, kwargs

    def __call__(self, x: Any) -> Any:
        return self.function(x, **self.kwargs)

    def __repr__(self) -> str:
        return f"{getattr(self.function, '__qualname__', self.function)}(**{self.kwargs})"


def _uses_image_keyword(step: Any) -> bool:
    """Albumentations' convention: called as `t(image=x)`, returning a dict."""
    if type(step).__module__.startswith("albumentations"):
        return True
    try:
        parameters = inspect.signature(step).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return any(p.name == "image" and p.kind is p.KEYWORD_ONLY for p in parameters)


class Compose:
    """Transforms applied in order, then `to_tensor`. Picklable, for DataLoader workers.

    Albumentations transforms draw from their own generators, not from the global ones that
    torch seeds in each DataLoader worker. They are reseeded from `torch.initial_seed()` the
    first time they run in a process (a worker's seed, derived from the loader's seeded
    generator): workers then draw different augmentations, the same ones for the same seed.
    """

    def __init__(self, steps: Sequence[Callable[..., Any]]) -> None:
        self.steps = list(steps)
        self._image_keyword = [_uses_image_keyword(step) for step in self.steps]
        self._seeded_for: tuple[int, int] | None = None

    def __call__(self, x: Any) -> torch.Tensor | Any:
        self._reseed()
        for step, image_keyword in zip(self.steps, self._image_keyword, strict=True):
            x = step(image=_to_numpy(x))["image"] if image_keyword else step(x)
        return to_tensor(x)

    def _reseed(self) -> None:
        key = (os.getpid(), torch.initial_seed())
        if key == self._seeded_for:
            return
        self._seeded_for = key
        rng = random.Random(key[1])
        for step in self.steps:
            if hasattr(step, "set_random_seed"):  # albumentations' transforms and Compose
                step.set_random_seed(rng.randrange(2**32))

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.steps))})"


def _to_numpy(x: Any) -> Any:
    """A Pillow image as the array albumentations takes (tensors are left to the step)."""
    if hasattr(x, "getbands") and hasattr(x, "size"):  # a PIL.Image, without importing PIL
        return np.asarray(x)
    return x


def to_tensor(x: Any) -> torch.Tensor | Any:
    """`x` as a float32 tensor, channels first.

    Numpy arrays and Pillow images are height x width (x channels), the layout of Pillow,
    OpenCV and albumentations; tensors are already channels first, torch's layout. uint8
    values are scaled to [0, 1]. Anything else (strings, dicts of tokens) passes unchanged.
    """
    if hasattr(x, "getbands") and hasattr(x, "size"):
        x = np.asarray(x)
    if isinstance(x, np.ndarray):
        scale = x.dtype == np.uint8
        if x.ndim == 2:
            x = x[None]
        elif x.ndim == 3:
            x = x.transpose(2, 0, 1)
        tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return tensor.div_(255.0) if scale else tensor
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.uint8:
            return x.float().div_(255.0)
        return x.float() if not x.is_floating_point() or x.dtype == torch.float64 else x
    return x
