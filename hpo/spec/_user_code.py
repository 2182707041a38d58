"""The code a spec names by import path, checked at validation: imported, never called.

A typo in `data.name`, `model.name`, `loss.name`, a metric, `loader.collate`, a
transform's `name`, or an optimizer's or LR scheduler's class by import path (and the keyword
arguments its signature does not take) is one message with its file, line and key before
anything starts, rather than a failure in every trial.
Nothing is imported for a spec that names no code of its own, so that `hpo validate` stays
fast and free of torch then.

`trainable:` names either a function (it calls `hpo.report`; the spec's `config` is its
own) or a subclass of `hpo.Pipeline`, for which the trainable sections apply as they do
for hpo's own trainable; which one is told by importing it.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from hpo.trainable import optim, schedules
from hpo.trainable.imported import is_import_path
from hpo.trainable.user_code import (
    check_import_path,
    is_pipeline_class,
    is_reference,
    load_callable,
    takes_one_argument,
)

if TYPE_CHECKING:
    from hpo.spec._spec import Spec
    from hpo.spec._yaml_source import Path as KeyPath


class TrainableKind(enum.Enum):
    """What a spec's trainable is, which decides the sections that apply."""

    BUILTIN = "builtin"  # none named: hpo's own Pipeline, configured by the sections
    PIPELINE = "pipeline"  # the user's subclass of hpo.Pipeline: the sections apply too
    FUNCTION = "function"  # the user's function: its base config is the spec's `config`

    @property
    def uses_sections(self) -> bool:
        """Whether hpo's loop runs it, configured by the trainable sections."""
        return self is not TrainableKind.FUNCTION


def trainable_kind(reference: str | None, given: Any = None) -> tuple[TrainableKind | None, str]:
    """The kind of trainable `reference` names, and why it cannot be told ("" when it can).

    Args:
        reference: the spec's `trainable`.
        given: the object it names, when the caller holds it (`hpo.tune`'s function or
            class, which need not be importable): it is not imported then.
    """
    if reference is None:
        return TrainableKind.BUILTIN, ""
    if given is None:
        if not is_reference(reference):
            return None, (
                f"expected 'package.module:function' (or 'package.module:Class', a subclass of "
                f"hpo.Pipeline), got {reference!r}"
            )
        try:
            given = load_callable(reference)
        except (ImportError, TypeError, ValueError) as exc:
            return None, f"cannot load {reference!r}: {exc}"
    return (TrainableKind.PIPELINE if is_pipeline_class(given) else TrainableKind.FUNCTION), ""


def code_problems(spec: Spec) -> list[tuple[KeyPath, str]]:
    """What the trainable sections name by import path that does not import, or cannot be
    called as hpo calls it; each at the key that names it."""
    issues: list[tuple[KeyPath, str]] = []
    if is_reference(spec.data.name):
        issues += _check_callable(("data", "name"), spec.data.name, "the data section as a dict")
    if is_reference(spec.model.name):
        issues += _check_callable(("model", "name"), spec.model.name, None)
    if is_reference(spec.loss.name):
        issues += _check_callable(("loss", "name"), spec.loss.name, None)
    for i, metric in enumerate(spec.metrics or []):
        if is_reference(metric):
            issues += _check_callable(("metrics", i), metric, None)
    if spec.loader.collate is not None:
        issues += _check_callable(("loader", "collate"), spec.loader.collate, "a list of samples")
    for split in ("train", "eval"):
        for i, item in enumerate(getattr(spec.transforms, split)):
            problem = check_import_path(item.name)
            if problem:
                issues.append((("transforms", split, i, "name"), problem))
    issues += _imported_class_problems(spec, "optimizer", optim.imported_problems)
    issues += _imported_class_problems(spec, "lr_scheduler", schedules.imported_problems)
    return issues


def _imported_class_problems(spec: Spec, section: str, problems: Any) -> list[tuple[KeyPath, str]]:
    """An optimizer's or LR scheduler's class by import path, checked with the section's keys
    and those the space searches in it; each problem at its key (the path's at `name`, a
    searched keyword's at its space entry)."""
    config = getattr(spec, section)
    if not is_import_path(config.name):
        return []
    given = set(config.kwargs()) | set(type(config).path_keys)
    searched = {
        key: key.partition(".")[2].partition(".")[0]
        for key in spec.space
        if key.startswith(f"{section}.")
    }
    found = problems(config, [kw for kw in searched.values() if kw not in given])
    issues: list[tuple[KeyPath, str]] = []
    for key, message in found:
        if key is None:
            issues.append(((section, "name"), message))
        elif key in given:
            issues.append(((section, key), message))
        else:
            issues += [(("space", s), message) for s, kw in searched.items() if kw == key]
    return issues


def _check_callable(
    key: KeyPath, reference: str, argument: str | None
) -> list[tuple[KeyPath, str]]:
    """Import `reference`; with `argument`, check it takes that one positional argument."""
    try:
        target = load_callable(reference)
    except (ImportError, TypeError, ValueError) as exc:
        return [(key, f"cannot load {reference!r}: {exc}")]
    problem = takes_one_argument(target, reference, argument) if argument else None
    return [(key, problem)] if problem else []
