"""Resume that loses nothing: trials that go on from an earlier run of their experiment.

- `_continuation`: the marker a continued trial's config carries, where a trial starts, and
  the history of results its checkpoints carry (imported by trial workers: keep it light);
- `_plan`: what a resumed run runs, from the store and the checkpoints.

Names are imported on first use: a trial worker reads the marker and the history, and must
not pay for the store's SQLAlchemy that the plan needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpo.resuming._continuation import (
        CONTINUE_KEY,
        Continuation,
        History,
        split,
        start,
        store_trial_id,
    )
    from hpo.resuming._plan import ResumePlan, latest_checkpoints, plan_resume

_EXPORTS = {
    "CONTINUE_KEY": "_continuation",
    "Continuation": "_continuation",
    "History": "_continuation",
    "split": "_continuation",
    "start": "_continuation",
    "store_trial_id": "_continuation",
    "ResumePlan": "_plan",
    "latest_checkpoints": "_plan",
    "plan_resume": "_plan",
}
__all__ = [
    "CONTINUE_KEY",
    "Continuation",
    "History",
    "ResumePlan",
    "latest_checkpoints",
    "plan_resume",
    "split",
    "start",
    "store_trial_id",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
