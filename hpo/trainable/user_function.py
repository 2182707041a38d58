"""Your own training function, searched by hpo: `hpo.tune(train_fn, ...)` and `hpo.report(...)`.

`train_fn(config)` trains one configuration and calls `hpo.report(metrics)` after each epoch
(with `checkpoint=` a directory to keep, when it has one). Its trials are scheduled by Ray
Tune and recorded in the same store as any other search, and analysed the same way.
Outside a search, `hpo.report` keeps the metrics in `local_reports`, so the same function
can be run and debugged in plain Python.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpo.resuming import History

# What `report` was given outside a search (a plain call of a training function).
local_reports: list[dict[str, Any]] = []


class _TrialState:
    """The running trial of this worker: which stored trial it is, where it starts from, and
    what it reported (its iteration count goes on from its checkpoint's, also in a resumed
    run; its checkpoints carry its results, see `hpo.resuming.History`)."""

    def __init__(self, checkpoint: Any, history: History, metric: str | None = None):
        from ray import tune

        from hpo.trainable.node import node_label

        self.checkpoint = checkpoint
        self.history = history
        self.metric = metric  # the search's, which `report` checks is finite
        # Looked up once per trial, not per report: a trial may report many times a second.
        self.node = node_label()
        self.tune = tune


_trial: _TrialState | None = None


def report(metrics: Mapping[str, Any], *, checkpoint: str | Path | None = None) -> None:
    """Report one epoch's metrics (and optionally a checkpoint directory) for this trial.

    Args:
        metrics: numbers by name; the search's `metric` must be among them.
        checkpoint: a directory with what is needed to continue training; Ray copies it
            into the trial's storage before this returns.

    Raises:
        FloatingPointError: the search's metric, or a metric named like a loss, is NaN or
            infinite; the trial fails with that reason instead of reporting it.
    """
    state = _trial or _search_trial()
    if state is None:
        local_reports.append(dict(metrics))
        return
    from hpo.trainable.finite import check_finite
    from hpo.trainable.node import NODE_KEY

    iteration = state.history.iteration + 1
    epoch = metrics.get("epoch")
    check_finite(metrics, state.metric, epoch if isinstance(epoch, int) else iteration)
    state.history.add(iteration, metrics)
    saved = None
    if checkpoint is not None:
        saved = state.tune.Checkpoint.from_directory(str(checkpoint))
        saved.set_metadata(state.history.metadata())
    state.tune.report(
        {**metrics, "training_iteration": iteration, NODE_KEY: state.node}, checkpoint=saved
    )


def _search_trial() -> _TrialState | None:
    """The trial of a function Ray runs without hpo's start (`run_user_function`), or None
    outside a search."""
    from ray import tune

    with warnings.catch_warnings():  # Ray warns when asked outside a search; that is the question
        warnings.simplefilter("ignore")
        trial_id = tune.get_context().get_trial_id()
    if trial_id is None:
        return None
    from hpo.resuming import History

    return _TrialState(None, History(trial_id))


def get_checkpoint() -> Any:
    """The checkpoint to continue from when a trial is retried or resumed, else None.

    Use it as `with hpo.get_checkpoint().as_directory() as path: ...`.
    """
    if _trial is not None:
        return _trial.checkpoint
    from ray import tune

    return tune.get_checkpoint()


def _start_trial(config: dict[str, Any], metric: str | None = None) -> dict[str, Any]:
    """Note where this worker's trial starts from; returns its config without hpo's keys."""
    global _trial
    from hpo.resuming import start

    config, checkpoint, history = start(config)
    _trial = _TrialState(checkpoint, history, metric)
    return config


def seed_for(config: Mapping[str, Any], seed: int) -> int:
    """A trial's seed: the experiment's seed and the trial's config, so reruns repeat."""
    text = json.dumps({"seed": seed, "config": config}, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def run_user_function(
    config: dict[str, Any],
    user_fn: Callable[[dict[str, Any]], Any],
    seed: int,
    metric: str | None = None,
) -> None:
    """What Ray runs for each trial of a user's function: seed everything, then call it."""
    import numpy as np

    config = _start_trial(config, metric)

    trial_seed = seed_for(config, seed)
    random.seed(trial_seed)
    np.random.seed(trial_seed % 2**32)
    # Seed torch where the function's module brought it in; importing it here would cost a
    # fresh worker seconds for a function that never uses it.
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(trial_seed)
    from ray import tune

    from hpo.trainable.node import NODE_KEY

    # Restored: its results the store lacks, and its own, again (see `History`). Without the
    # checkpoint: reported again, it would be a copy, and Ray could delete the original (it
    # keeps `checkpoint.keep`) before the function has read it.
    _trial.history.replay(tune.report, {NODE_KEY: _trial.node})
    try:
        user_fn(config)
    finally:
        # The worker may run another trial next (actor reuse) or none: `report` outside
        # this call is not this trial's.
        _end_trial()


def _end_trial() -> None:
    global _trial
    _trial = None


def shipped_by_value(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Make Ray send a user's function to its workers as code, not as an import.

    A function from the user's own files (a script, a project module, a notebook) cannot be
    imported by a worker whose path differs; one from an installed package can.
    """
    from ray import cloudpickle

    module = sys.modules.get(fn.__module__)
    path = getattr(module, "__file__", None) or ""
    if module is not None and fn.__module__ != "__main__" and "-packages" not in path:
        cloudpickle.register_pickle_by_value(module)
    return fn


def function_name(fn: Callable[..., Any]) -> str:
    """`module:qualname` of a function, as the spec records it."""
    return f"{fn.__module__}:{fn.__qualname__}"


