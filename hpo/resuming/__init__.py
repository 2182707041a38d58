"""Resume that loses nothing: trials that go on from an earlier run of their experiment.

- `_marker`: the key a continued trial's config carries (`mark` adds it, `split` takes it off);
- `_history`: the results a trial's checkpoints carry (`History`);
- `_start`: where a trial starts, in its own process (imported by trial workers: keep these
  three light);
- `_plan`: what a resumed run runs, from the store and the checkpoints (`plan_resume`);
- `_warm`: what a resumed run's searcher starts from (`WarmStart`, built from the plan);
- `_rungs`: ASHA's rungs, rebuilt from the store and moved to a continued trial.

Names are imported on first use: a trial worker reads the marker and the history, and must
not pay for the store's SQLAlchemy that the plan needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpo.resuming._history import History
    from hpo.resuming._marker import CONTINUE_KEY, Continuation, mark, split, store_trial_id
    from hpo.resuming._plan import (
        ContinuedTrial,
        FinishedTrial,
        ResumePlan,
        RunStart,
        TrialStart,
        latest_checkpoints,
        plan_resume,
    )
    from hpo.resuming._rungs import RungHistory, move_rungs, restore_rungs
    from hpo.resuming._start import start
    from hpo.resuming._warm import Enqueued, Prior, WarmStart, fresh, warm_start

_EXPORTS = {
    "CONTINUE_KEY": "_marker",
    "Continuation": "_marker",
    "mark": "_marker",
    "split": "_marker",
    "store_trial_id": "_marker",
    "History": "_history",
    "start": "_start",
    "ContinuedTrial": "_plan",
    "FinishedTrial": "_plan",
    "ResumePlan": "_plan",
    "RunStart": "_plan",
    "TrialStart": "_plan",
    "latest_checkpoints": "_plan",
    "plan_resume": "_plan",
    "RungHistory": "_rungs",
    "move_rungs": "_rungs",
    "restore_rungs": "_rungs",
    "Enqueued": "_warm",
    "Prior": "_warm",
    "fresh": "_warm",
    "WarmStart": "_warm",
    "warm_start": "_warm",
}
__all__ = [
    "CONTINUE_KEY",
    "Continuation",
    "ContinuedTrial",
    "Enqueued",
    "FinishedTrial",
    "History",
    "Prior",
    "ResumePlan",
    "RunStart",
    "RungHistory",
    "TrialStart",
    "WarmStart",
    "fresh",
    "latest_checkpoints",
    "mark",
    "move_rungs",
    "plan_resume",
    "restore_rungs",
    "split",
    "start",
    "store_trial_id",
    "warm_start",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
