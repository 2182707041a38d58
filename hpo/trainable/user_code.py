"""User code by reference: `package.module:function`, imported only when it is needed.

Nothing here imports torch. `hpo validate` imports what a spec names through these
functions (the user's modules may import torch themselves), and tells a subclass of
`hpo.Pipeline` by the names in its MRO, so that a spec naming no user code validates fast.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import pkgutil
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

# `a.b.c:attr` (the attribute may be dotted too, e.g. `module:Class.method`).
_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

# hpo's base Pipeline, by module and qualified name: what a user's Pipeline subclasses.
_PIPELINE = ("hpo.trainable.pipeline", "Pipeline")


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
        ImportError: the module cannot be imported (or raised while it was), or it has no
            such attribute (the message names the closest one it has).
        TypeError: the attribute is not callable.
    """
    module_name, _, attribute = check_reference(reference).partition(":")
    target = _attribute(_import(module_name, reference), module_name, attribute)
    if not callable(target):
        raise TypeError(f"{reference!r} is not callable (got {type(target).__name__})")
    return target


def load_import_path(name: str) -> Callable[..., Any]:
    """The class or function `name` stands for: `package.module.Class` (the longest prefix
    that is a module, then attributes) or `package.module:Class`. Imports; calls nothing.

    Raises:
        ImportError: no prefix imports, or the module lacks the attribute (the message names
            its closest attribute: "module 'albumentations' has no attribute 'HorizontalFlp';
            did you mean 'HorizontalFlip'?").
        TypeError: it is not callable.
    """
    if ":" in name:
        return load_callable(name)
    parts = name.split(".")
    if len(parts) < 2:
        raise ImportError(f"{name!r} names no module; write it as 'package.module.Class'")
    # The longest prefix that is a module: `a.b.C` is C of a.b, `a.b.C.D` may be D of C.
    cut = len(parts) - 1
    while True:
        module_name = ".".join(parts[:cut])
        try:
            module = _import(module_name, name)
            break
        except ImportError as exc:
            missing = getattr(exc.__cause__, "name", None)
            if cut == 1 or missing != module_name:
                raise
            cut -= 1  # not a module: perhaps an attribute of the shorter prefix
    return _callable(_attribute(module, module_name, ".".join(parts[cut:])), name)


def check_import_path(name: str) -> str | None:
    """Why `name` does not import as a callable (see `load_import_path`), or None."""
    return _problem(lambda: load_import_path(name))


def takes_one_argument(target: Callable[..., Any], reference: str, argument: str) -> str | None:
    """Why hpo cannot call `target` with one positional argument (described by `argument`,
    e.g. "the data section as a dict"), or None when it can.

    Told from the signature alone; a callable without one (a builtin) is given the benefit.
    """
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(object())
    except TypeError:
        name = getattr(target, "__name__", "load")
        how = (
            f"`class {name}: def __init__(self, config): ...`"
            if isinstance(target, type)
            else f"`def {name}(config): ...`"
        )
        return (
            f"hpo calls {reference!r} with one argument, {argument}, but its signature is "
            f"{signature}; write it as {how} (other parameters need defaults)"
        )
    return None


def is_pipeline_class(obj: object) -> bool:
    """Whether `obj` is a subclass of `hpo.Pipeline` (or the class itself).

    Told by the module and qualified name of each class in its MRO, so that telling needs
    neither torch nor `hpo.trainable.pipeline`: the user's module imported them already.
    """
    return isinstance(obj, type) and any(
        (getattr(cls, "__module__", None), getattr(cls, "__qualname__", None)) == _PIPELINE
        for cls in inspect.getmro(obj)
    )


def _import(module_name: str, reference: str) -> ModuleType:
    """Import a user's module; every way it fails is an ImportError saying how."""
    if module_name.partition(".")[0] == "albumentations":
        # Its import asks the package index for a newer release (up to seconds, offline too)
        # unless told not to: in every trial worker and every `hpo validate`.
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if missing != module_name and not module_name.startswith(f"{missing}."):
            # The module exists; something it imports does not.
            raise ImportError(
                f"cannot import {module_name!r} for {reference!r}: it imports {missing!r}, "
                "which is not installed"
            ) from exc
        close = _closest_module(missing)
        hint = (
            f"did you mean {close!r}?"
            if close
            else "is its directory on PYTHONPATH or the current directory?"
        )
        raise ImportError(
            f"cannot import {module_name!r} for {reference!r} ({exc}); {hint}"
        ) from exc
    except Exception as exc:  # a user's module may raise anything while it loads
        raise ImportError(
            f"importing {module_name!r} for {reference!r} raised {type(exc).__name__}: {exc}"
        ) from exc


def _attribute(module: ModuleType, module_name: str, attribute: str) -> Any:
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            names = [n for n in dir(target) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ImportError(
                f"module {module_name!r} has no attribute {attribute!r}{hint}"
            ) from None
    return target


def _callable(target: Any, name: str) -> Any:
    if not callable(target):
        raise TypeError(f"{name!r} is not callable (got {type(target).__name__})")
    return target


def _problem(load: Callable[[], Any]) -> str | None:
    try:
        load()
    except (ImportError, TypeError, ValueError) as exc:
        return str(exc)
    return None


def _closest_module(missing: str) -> str | None:
    """The installed top-level module a misspelt one most likely meant (looked for only on an
    error: it lists the modules on the path)."""
    if "." in missing:
        return None
    names = sorted({m.name for m in pkgutil.iter_modules()})
    close = difflib.get_close_matches(missing, names, n=1, cutoff=0.75)
    return close[0] if close else None
