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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpo.analysis import Experiment
    from hpo.continued import History

# What `report` was given outside a search (a plain call of a training function).
local_reports: list[dict[str, Any]] = []


class _TrialState:
    """The running trial of this worker: which stored trial it is, where it starts from, and
    what it reported (its iteration count goes on from its checkpoint's, also in a resumed
    run; its checkpoints carry its results, see `hpo.continued.History`)."""

    def __init__(self, checkpoint: Any, history: History, metric: str | None = None):
        self.checkpoint = checkpoint
        self.history = history
        self.metric = metric  # the search's, which `report` checks is finite


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
    from ray import tune

    from hpo.finite import check_finite

    with warnings.catch_warnings():  # Ray warns when asked outside a search; that is the question
        warnings.simplefilter("ignore")
        in_search = tune.get_context().get_trial_id() is not None
    if not in_search:
        local_reports.append(dict(metrics))
        return
    from hpo.cluster import NODE_KEY, node_label
    from hpo.continued import History

    state = _trial or _TrialState(None, History(tune.get_context().get_trial_id()))
    iteration = state.history.iteration + 1
    epoch = metrics.get("epoch")
    check_finite(metrics, state.metric, epoch if isinstance(epoch, int) else iteration)
    state.history.add(iteration, metrics)
    saved = None
    if checkpoint is not None:
        saved = tune.Checkpoint.from_directory(str(checkpoint))
        saved.set_metadata(state.history.metadata())
    result = {**metrics, "training_iteration": iteration, NODE_KEY: node_label()}
    tune.report(result, checkpoint=saved)


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
    from hpo.continued import start

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

    from hpo.cluster import NODE_KEY, node_label

    # Restored: its results the store lacks, and its own, again (see `History`). Without the
    # checkpoint: reported again, it would be a copy, and Ray could delete the original (it
    # keeps `checkpoint.keep`) before the function has read it.
    _trial.history.replay(tune.report, {NODE_KEY: node_label()})
    user_fn(config)


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


def tune(
    train_fn: Callable[[dict[str, Any]], Any],
    *,
    space: Mapping[str, Any],
    metric: str,
    mode: str = "min",
    config: Mapping[str, Any] | None = None,
    name: str | None = None,
    searcher: str | Mapping[str, Any] = "random",
    scheduler: str | Mapping[str, Any] = "fifo",
    num_samples: int | None = None,
    max_concurrent: int | None = None,
    time_budget_s: float | None = None,
    fail_fast: int | None = None,
    resources: Mapping[str, float] | None = None,
    seed: int = 0,
    store: str | None = None,
    ray: Mapping[str, Any] | None = None,
    console: Any = None,
    callbacks: Sequence[Any] = (),
) -> Experiment:
    """Search the hyperparameters of your own training function.

    Args:
        train_fn: `train_fn(config)` trains one configuration, calling `hpo.report(metrics)`
            each epoch.
        space: dotted keys into `config` -> distributions, as in a spec's `space`.
        metric, mode: what to optimise, and which way.
        config: the base config every trial starts from (searched keys are set into it).
        name: the experiment's name (default: the function's name).
        searcher, scheduler: as in a spec (`"optuna"`, `{"name": "asha", "max_t": 20}`).
        num_samples, max_concurrent, time_budget_s, fail_fast: the budget (as in a spec).
        resources: per trial, e.g. `{"cpu": 1, "gpu": 0.5}`.
        seed: the experiment's seed (searcher and each trial's seeds derive from it).
        store: the results store (default as for `hpo run`).
        ray: an existing Ray cluster, as a spec's `ray` section
            (`{"address": "auto", "storage_path": "/shared/hpo-results"}`).

    Returns:
        The experiment, as `hpo.load` would give it.

    Raises:
        SpecError: the arguments do not make a valid search; nothing was started.
    """
    from hpo.runner import execute
    from hpo.spec import load_spec
    from hpo.store import resolve_url

    budget = {
        "num_samples": num_samples,
        "max_concurrent": max_concurrent,
        "time_budget_s": time_budget_s,
        "fail_fast": fail_fast,
    }
    spec = load_spec(
        {
            "name": name or train_fn.__name__,
            "metric": metric,
            "mode": mode,
            "seed": seed,
            "trainable": function_name(train_fn),
            "config": dict(config or {}),
            "space": dict(space),
            "searcher": searcher,
            "scheduler": scheduler,
            "budget": {key: value for key, value in budget.items() if value is not None},
            "resources": dict(resources or {}),
            **({"store": store} if store else {}),
            **({"ray": dict(ray)} if ray else {}),
        }
    )
    return execute(
        spec,
        store_url=resolve_url(None, spec.store),
        console=console,
        callbacks=callbacks,
        function=train_fn,
    )
