"""Names of one kind (datasets, models, optimizers, ...) and what each one reads.

Each name is registered once, with the config keys it reads and a line that describes it.
Validation, its error messages, `hpo schema` and the spec's field descriptions all read the
registry, so no list of names is kept by hand anywhere else (after Lightning Fabric's
`accelerators/registry.py`).

Third-party packages add names through a Python entry point group (`hpo.models`, ...): the
entry point's name is the hpo name, its object the value to register, or an `Entry` that
also names its options. They are loaded on the first question the built-in names cannot
answer, so that a spec using only built-in names imports no plugin (and, through it, no
torch).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name.

    Attributes:
        value: what the name stands for (a builder, a model class, a dataset loader, ...).
        options: the config keys this name reads besides those every name of its kind reads
            (None: every key of its section, as a plugin's bare builder may).
        description: one line for `hpo schema` and the field descriptions.
    """

    value: T
    options: frozenset[str] | None = frozenset()
    description: str = ""


class UnknownName(ValueError):
    """A name that is not registered (a ValueError, so that pydantic reports it at its key)."""


class Registry(Generic[T]):
    """The names of one kind, each with its value, its options and a description.

    Args:
        kind: what a name names, for messages ("optimizer").
        group: the entry point group that plugins register names in (None: no plugins).
        plugin_options: the options of a plugin's bare value, one that is not an `Entry`
            (None: every key of its section, when the value receives the whole section).
        accepts: the type(s) a plugin's value must have, checked when it loads (a wrong one
            fails there, with its plugin's name, rather than in a trial).
    """

    def __init__(
        self,
        kind: str,
        *,
        group: str | None = None,
        plugin_options: Iterable[str] | None = (),
        accepts: type | tuple[type, ...] = object,
    ) -> None:
        self.kind = kind
        self.group = group
        self._plugin_options = None if plugin_options is None else frozenset(plugin_options)
        self._accepts = accepts
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_loaded = group is None

    def register(
        self,
        name: str,
        value: T | None = None,
        *,
        options: Iterable[str] | None = (),
        description: str = "",
        override: bool = False,
    ) -> Any:
        """Register `value` as `name`; without a value, a decorator that registers what it wraps.

        Raises:
            ValueError: `name` is registered already and `override` is not set.
        """
        if value is None:

            def decorate(wrapped: T) -> T:
                self.register(
                    name, wrapped, options=options, description=description, override=override
                )
                return wrapped

            return decorate
        if name in self._entries and not override:
            raise ValueError(
                f"{self.kind} {name!r} is registered already; pass override=True to replace it"
            )
        read = None if options is None else frozenset(options)
        self._entries[name] = Entry(value, read, description or _first_line(value))
        return value

    def entry(self, name: str) -> Entry[T]:
        """The entry of a registered name.

        Raises:
            UnknownName: saying which names there are, and the closest one.
        """
        if name not in self:
            raise UnknownName(self.unknown(name))
        return self._entries[name]

    def __getitem__(self, name: str) -> T:
        return self.entry(name).value

    def get(self, name: str, default: Any = None) -> Any:
        """The value of `name`, or `default` where it is not registered."""
        return self._entries[name].value if name in self else default

    def built_in(self) -> list[T]:
        """The values registered by hpo itself (no plugin is loaded), in the order registered:
        what a pydantic union of them is formed from when its module is imported."""
        if self._plugins_loaded and self.group is not None:
            raise RuntimeError(f"the {self.kind} plugins are loaded already")
        return [entry.value for entry in self._entries.values()]

    def options(self, name: str) -> frozenset[str] | None:
        """The config keys `name` reads besides the common ones of its kind (None: every key)."""
        return self.entry(name).options

    def check(self, name: str) -> str:
        """`name` if it is registered.

        Raises:
            UnknownName: naming the closest registered name and every one there is.
        """
        self.entry(name)
        return name

    def unknown(self, name: str, alternative: str = "") -> str:
        """The message for an unknown name: "unknown optimizer 'adma'; did you mean 'adam'?
        available: adam, adamw, rmsprop, sgd", then `alternative` (another form it may take)."""
        names = list(self)
        hint = closest(name, names) or ";"
        return f"unknown {self.kind} {name!r}{hint} available: {', '.join(names)}{alternative}"

    def describe(self, *others: str) -> str:
        """The names as prose, for a field's description: "sgd, adam, adamw or rmsprop"."""
        names = [*self._registered(), *others]
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

    def _registered(self) -> list[str]:
        # In registration order: the order the built-ins were written in reads best.
        self._load_plugins()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        if name in self._entries:
            return True
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._registered()))

    def __len__(self) -> int:
        return len(self._registered())

    def _load_plugins(self) -> None:
        """Register the names of every installed plugin of this kind, once."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for point in entry_points(group=self.group or ""):
            if point.name in self._entries:
                warnings.warn(
                    f"{point.value} ({point.group}) names {self.kind} {point.name!r}, which is "
                    "built in; the built-in one is kept",
                    stacklevel=2,
                )
                continue
            try:
                loaded = point.load()
            except Exception as exc:  # a broken plugin must not break every other name
                warnings.warn(
                    f"cannot load {self.kind} {point.name!r} from {point.value} "
                    f"({point.group}): {type(exc).__name__}: {exc}",
                    stacklevel=2,
                )
                continue
            entry = loaded if isinstance(loaded, Entry) else None
            value = entry.value if entry is not None else loaded
            if not isinstance(value, self._accepts):
                warnings.warn(
                    f"{self.kind} {point.name!r} from {point.value} ({point.group}) is a "
                    f"{type(value).__name__}, not {_names_of(self._accepts)}; it is left out",
                    stacklevel=2,
                )
            elif entry is not None:
                self._entries[point.name] = entry
            else:
                self.register(point.name, value, options=self._plugin_options)


def closest(name: str, names: Iterable[str]) -> str:
    """"; did you mean 'adam'?" for the name closest to `name`, or "" when none is close."""
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _names_of(types: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))


def _first_line(value: Any) -> str:
    """The first line of a function's or class's docstring (an instance's is its class's)."""
    doc = value.__doc__ if isinstance(value, type) or callable(value) else None
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""
