"""The base of every spec section: frozen, with unknown keys rejected instead of ignored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def by_name(value: Any) -> Any:
    """Allow the short form `searcher: optuna` for `searcher: {name: optuna}`."""
    return {"name": value} if isinstance(value, str) else value
