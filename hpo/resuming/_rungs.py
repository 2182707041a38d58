"""ASHA's rungs in a resumed run: rebuilt from the store, and moved to a continued trial's id.

Ray does not restore ASHA's rungs (ray-project/ray#30838), so a resumed run rebuilds them from
the store: a trial's value at each milestone it reached, as Ray records it. These functions
work on Ray's own `ASHAScheduler` (its `_brackets`, each with `_rungs` of `(milestone,
{trial id: value})`, and `_metric_op`): the one place that reads those private parts.
"""

from __future__ import annotations

from typing import Any

from hpo.resuming._marker import store_trial_id

# A stored trial's id -> its spec metric by iteration: what a resumed run's scheduler knows.
RungHistory = dict[str, dict[int, float]]


def restore_rungs(asha: Any, history: RungHistory) -> bool:
    """Record every earlier trial at each milestone it reached; False (nothing done) while
    `asha` does not know its metric's mode yet, which the records depend on."""
    if asha._metric_op is None:
        return False
    for bracket in asha._brackets:
        for milestone, recorded in bracket._rungs:
            for trial_id, values in history.items():
                # Ray records the first result at or past the milestone.
                reached = [it for it in sorted(values) if it >= milestone]
                if reached:
                    recorded[trial_id] = asha._metric_op * values[reached[0]]
    return True


def move_rungs(asha: Any, trial: Any) -> None:
    """A continued trial is a new Ray trial: its records move from its stored id to Ray's."""
    stored = store_trial_id(trial)
    if stored == trial.trial_id:
        return
    for bracket in asha._brackets:
        for _, recorded in bracket._rungs:
            if stored in recorded:
                recorded[trial.trial_id] = recorded.pop(stored)
