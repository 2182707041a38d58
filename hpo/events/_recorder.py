"""The Ray Tune callback through which the driver, and only the driver, writes the store.

Results are buffered and written in batched transactions (at most about once a second, and
at every trial's start and end), so the store costs the search little.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from collections.abc import Iterable
from numbers import Number
from pathlib import Path
from typing import Any

from ray import cloudpickle
from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS, DONE, TRAINING_ITERATION

from hpo.resuming import split, store_trial_id
from hpo.search import Space
from hpo.store import Store, TrialStatus, now
from hpo.trainable.config import FINAL_KEY
from hpo.trainable.node import node_of
from hpo.types import keep_best

# Ray's bookkeeping in every result; the store keeps what the trainable reported (and the
# total time, which is useful for analysis).
_RAY_KEYS = (set(AUTO_RESULT_KEYS) - {"time_total_s"}) | {
    DONE,
    "trial_id",
    "experiment_tag",
    "experiment_id",
    "should_checkpoint",
    "episodes_total",
    "timesteps_total",
}

FLUSH_EVERY_S = 1.0


# The attribute of a Ray trial that holds its number in the store, set by `StoreRecorder` (the
# first callback) when the trial appears: in a resumed run, Ray's own order starts again at 0.
_NUMBER = "hpo_number"


def trial_number(trial: Any, trials: list) -> int:
    """A trial's number in the store (for a trial the recorder has not seen: its place in Ray's
    list of trials, which is in order of creation)."""
    number = getattr(trial, _NUMBER, None)
    return trials.index(trial) if number is None else number


def finished_by_itself(trial: Any, pruned: set[str]) -> bool:
    """Whether a trial ended on its own rather than being stopped by the scheduler.

    Ray marks the last result `done` in both cases. hpo's trainable says it itself (its
    last result's `FINAL_KEY`); for a user's function, the scheduler's record (`pruned`) tells.
    """
    last = trial.last_result or {}
    return bool(last[FINAL_KEY]) if FINAL_KEY in last else trial.trial_id not in pruned


def reported_metrics(result: dict[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in result.items()
        if key not in _RAY_KEYS and isinstance(value, Number) and not isinstance(value, bool)
    }


class StoreRecorder(Callback):
    """Mirrors every trial's status, params and per-epoch metrics into the store.

    In a resumed run (`hpo resume`), new trials are numbered from `first_number`, and a
    continued trial is written under its stored id; `last_steps` and `best` hold what the store
    already has of the continued trials (their last iteration and best metrics so far), and
    `started` those that ran before (they keep their start time).
    """

    def __init__(
        self,
        store: Store,
        experiment_id: int,
        space: Space,
        metric: str,
        mode: str,
        pruned: set[str],
        *,
        first_number: int = 0,
        last_steps: dict[str, int] | None = None,
        best: dict[str, dict[str, float]] | None = None,
        started: Iterable[str] = (),
    ):
        self.store = store
        self.pruned = pruned
        self.experiment_id = experiment_id
        self.space = space
        self.metric = metric
        self.mode = mode
        self._trials: dict[str, dict[str, Any]] = {}  # pending column updates by trial id
        self._results: list[dict[str, Any]] = []
        # By the trial's id in the store:
        self._best: dict[str, dict[str, float]] = dict(best or {})  # metric -> best so far
        self._last_step: dict[str, int] = dict(last_steps or {})  # last iteration recorded
        self._known = 0  # trials of Ray's list already in the store
        self._next_number = first_number
        self._last_flush = time.monotonic()
        self._started = set(started)  # continued trials that keep their start time

    def _stage(self, trial: Any, **columns: Any) -> None:
        trial_id = store_trial_id(trial)
        row = self._trials.setdefault(
            trial_id, {"experiment_id": self.experiment_id, "trial_id": trial_id}
        )
        row.update(columns)

    def flush(self) -> None:
        trial_rows, self._trials = list(self._trials.values()), {}
        result_rows, self._results = self._results, []
        self.store.write(trial_rows, result_rows)
        self._last_flush = time.monotonic()

    def _add_new(self, trials: list) -> None:
        """Record trials Ray has created since the last call (they wait as PENDING)."""
        for trial in trials[self._known :]:
            config, continuation = split(trial.config)
            if continuation is None:
                number, self._next_number = self._next_number, self._next_number + 1
            else:
                number = continuation.number
            setattr(trial, _NUMBER, number)
            self._stage(
                trial,
                number=number,
                status=TrialStatus.PENDING.value,
                params=self.space.params_of(config),
                config=config,
            )
        self._known = len(trials)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self._add_new(trials)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._add_new(trials)
        trial_id = store_trial_id(trial)
        if trial_id not in self._started:
            self._started.add(trial_id)  # Ray starts a trial again after a failure
            self._stage(trial, status=TrialStatus.RUNNING.value, started_at=now())
        else:  # continued by `hpo resume`: it keeps its start; an earlier error is over
            self._stage(
                trial,
                status=TrialStatus.RUNNING.value,
                ended_at=None,
                error=None,
                error_type=None,
                error_traceback=None,
            )
        self.flush()

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        step = int(result[TRAINING_ITERATION])
        trial_id = store_trial_id(trial)
        if step <= self._last_step.get(trial_id, 0):
            # A retried or resumed trial continues from its checkpoint and reports these
            # epochs again: its new results replace the old ones.
            self._results = [
                r
                for r in self._results
                if not (r["trial_id"] == trial_id and r["iteration"] >= step)
            ]
            self.flush()
            self.store.delete_results(self.experiment_id, trial_id, step)
        metrics = reported_metrics(result)
        self._last_step[trial_id] = step
        self._results.append(
            {
                "experiment_id": self.experiment_id,
                "trial_id": trial_id,
                "iteration": step,
                "metrics": metrics,
                "reported_at": now(),
            }
        )
        best = self._best.setdefault(trial_id, {})
        keep_best(best, metrics, self.metric, self.mode)
        self._stage(
            trial,
            iterations=step,
            last_result=metrics,
            final_metrics=metrics,
            best_metrics=dict(best),
            value=metrics.get(self.metric),
            best_value=best.get(self.metric),
            node=node_of(result),
        )

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        status = (
            TrialStatus.COMPLETED if finished_by_itself(trial, self.pruned) else TrialStatus.PRUNED
        )
        self._stage(trial, status=status.value, ended_at=now(), **self._checkpoint_path(trial))
        self.flush()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error_type, message, trace = trial_error(trial)
        self._stage(
            trial,
            status=TrialStatus.ERROR.value,
            ended_at=now(),
            error_type=error_type,
            error=message,
            error_traceback=trace,
            **self._checkpoint_path(trial),
        )
        self.flush()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush()

    def _checkpoint_path(self, trial: Any) -> dict[str, str]:
        """The trial's latest checkpoint, as a column to write: the one Ray has of it, else
        the one `hpo resume` continued it from, if the trial ended there; else none (a DDP
        trial's checkpoints are its Ray Train run's, which Tune does not see)."""
        path = getattr(getattr(trial, "checkpoint", None), "path", None)
        continuation = split(trial.config)[1]
        ended_there = (
            continuation is not None
            and self._last_step.get(continuation.trial_id) == continuation.iteration
        )
        if path is None and ended_there:
            path = continuation.checkpoint
        return {"checkpoint_path": path} if path else {}


def trial_error(trial: Any) -> tuple[str, str, str]:
    """The trial's exception: its type, `Type: message`, and its traceback.

    Ray has just written the error next to the trial (locally); its copy in the storage
    path may not be synced yet, so the local file is read.
    """
    exc = None
    path = trial.pickled_error_file
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            exc = cloudpickle.load(f)
    cause = getattr(exc, "cause", None) or exc
    if cause is None:
        path = trial.error_file
        text = Path(path).read_text().strip() if path and os.path.exists(path) else "unknown error"
        return "UnknownError", text.splitlines()[-1] if text else "unknown error", text
    message = "".join(traceback.format_exception_only(type(cause), cause)).strip()
    # Ray's RayTaskError carries the trial's remote traceback as its text (older Ray versions
    # kept it in `traceback_str` instead).
    trace = getattr(exc, "traceback_str", None) or (str(exc) if exc is not cause else "")
    trace = _ANSI.sub("", trace)
    return type(cause).__name__, message, trace


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


