"""User code by reference: `package.module:function`, imported only when it is needed."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

# `a.b.c:attr` (the attribute may be dotted too, e.g. `module:Class.method`).
_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_reference(name: str) -> bool:
    """Whether `name` is a `module:function` reference rather than a registered name."""
    return ":" in name


def check_reference(name: str) -> str:
    """Check the form of a `module:function` reference, without importing anything.

    Importing happens where the code runs (the driver for data, each trial for models),
    so that validating a spec stays fast and needs neither torch nor the user's packages.
    """
    if not _REFERENCE.match(name):
        raise ValueError(f"{name!r} is not a reference of the form 'package.module:function'")
    return name


def load_callable(reference: str) -> Callable[..., Any]:
    """Import `package.module:function` and return the function.

    Raises:
        ImportError: the module cannot be imported, or it has no such attribute.
        TypeError: the attribute is not callable.
    """
    module_name, _, attribute = check_reference(reference).partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"cannot import {module_name!r} for {reference!r} ({exc}); is its directory on "
            "PYTHONPATH or the current directory?"
        ) from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise TypeError(f"{reference!r} is not callable (got {type(target).__name__})")
    return target
