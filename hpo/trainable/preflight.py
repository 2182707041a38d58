"""Checks made in the driver before a search starts: the user's code imports, the data loads.

They fail on the user's input as spec errors, before anything is written or started, so that
a typo is one message now rather than a failure in every trial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hpo.errors import SpecError, SpecIssue
from hpo.trainable.config import DataConfig, ModelConfig
from hpo.trainable.data import Dataset


class UserCodeSpec(Protocol):
    """What the checks read of a spec (a `hpo.spec.Spec` is one; the spec sits above here)."""

    @property
    def name(self) -> str: ...
    @property
    def trainable(self) -> str | None: ...
    @property
    def model(self) -> ModelConfig: ...
    @property
    def data(self) -> DataConfig: ...


def check_user_code(spec: UserCodeSpec) -> Callable[..., Any] | None:
    """Import what the spec names by `package.module:function` (its trainable, its model).

    `load_spec` has checked these already, with the file's lines; this check is for a spec
    that did not come through it (one stored by an earlier run, resumed).

    Returns:
        What the spec's `trainable` names (the user's training function, or a subclass of
        hpo.Pipeline: tell them apart with `user_code.is_pipeline_class`), or None for hpo's
        own trainable.

    Raises:
        SpecError: a reference cannot be imported, or is not callable.
    """
    from hpo.trainable.user_code import is_reference

    if spec.trainable:
        return _load(spec, "trainable", spec.trainable)
    if is_reference(spec.model.name):
        _load(spec, "model.name", spec.model.name)
    return None


def load_data(spec: UserCodeSpec) -> Dataset:
    """The experiment's dataset, loaded once in the driver, or why it cannot be.

    Raises:
        SpecError: the data cannot be loaded.
    """
    from hpo.trainable.data import load_dataset

    try:
        return load_dataset(spec.data)
    except (OSError, ValueError, ImportError, TypeError, KeyError) as exc:
        raise SpecError(spec.name, [SpecIssue("data", f"cannot load the data: {exc}")]) from None


def loads_in_driver(spec: UserCodeSpec, pipeline: type[Any] | None) -> bool:
    """Whether the driver loads the data (`load_data`): hpo's in-memory datasets, for hpo's
    trainable or a pipeline that opens its data from the spec's `data` section (not one
    whose `setup_data` is its own)."""
    from hpo.trainable.data import loaded_in_driver

    if pipeline is not None:
        from hpo.trainable.pipeline import Pipeline

        if pipeline.setup_data is not Pipeline.setup_data:
            return False
    return loaded_in_driver(spec.data)


def _load(spec: UserCodeSpec, key: str, reference: str) -> Callable[..., Any]:
    from hpo.trainable.user_code import load_callable

    try:
        return load_callable(reference)
    except (ImportError, TypeError, ValueError) as exc:
        raise SpecError(spec.name, [SpecIssue(key, f"cannot load {reference!r}: {exc}")]) from None
