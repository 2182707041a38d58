"""The base of every spec section: frozen, with unknown keys rejected instead of ignored."""

from __future__ import annotations

import typing
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from hpo._registry import Registry


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def by_name(value: Any) -> Any:
    """Allow the short form `searcher: optuna` for `searcher: {name: optuna}`."""
    return {"name": value} if isinstance(value, str) else value


def register_options(registry: Registry[Any]) -> Any:
    """A class decorator: register an option model under the tag of its `name` field, its
    other fields as its options and its docstring's first line as its description."""

    def register(model: type[Options]) -> type[Options]:
        (name,) = typing.get_args(model.model_fields["name"].annotation)
        registry.register(name, model, options=set(model.model_fields) - {"name"})
        return model

    return register


def tagged_union(registry: Registry[Any]) -> Any:
    """The spec field type of one of the registry's option models, chosen by `name` (or
    given as the name alone)."""
    members = tuple(registry.built_in())
    return Annotated[
        Annotated[typing.Union[members], Field(discriminator="name")],  # noqa: UP007
        BeforeValidator(by_name),
    ]
