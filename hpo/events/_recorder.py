"""The consumer through which the driver, and only the driver, writes the store.

Results are staged and written in batched transactions by a writer thread (about once a
second), so that the SQL work is off Ray's loop: a trial's next report waits for the driver to
take this one, and the store's time would be added to it. What other code reads or writes
right after an event is written before the event returns: a trial's start and end, a trial
reporting epochs again, the search's end, and `close` (an interrupted or failed run).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from hpo.events._events import (
    Consumer,
    Event,
    SearchEnded,
    StepEnded,
    StoredTrial,
    TrialAdded,
    TrialEnded,
    TrialExploited,
    TrialRepeated,
    TrialReported,
    TrialStarted,
)
from hpo.pareto import Constraint, feasible
from hpo.store import Store, now

FLUSH_EVERY_S = 1.0

_Batch = tuple[list[dict[str, Any]], list[dict[str, Any]]]


class _Writer:
    """One thread writing batches to the store in the order given; a failure is raised on the
    next `put` or `wait`, so that a store that cannot be written stops the run as before."""

    def __init__(self, store: Store):
        self.store = store
        self._batches: queue.Queue[_Batch | None] = queue.Queue()
        self._error: BaseException | None = None
        # A daemon: a driver killed at once (a second Ctrl-C) loses at most the last second
        # of results, which a resume trains again from the checkpoint anyway.
        self._thread = threading.Thread(target=self._run, name="hpo-store-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            try:
                if self._error is None:
                    self.store.write(*batch)
            except BaseException as exc:  # raised again in the driver's thread
                self._error = exc
            finally:
                self._batches.task_done()
        self._batches.task_done()

    def put(self, batch: _Batch) -> None:
        self._raise()
        self._batches.put(batch)

    def wait(self) -> None:
        """Return once every batch given so far is written."""
        self._batches.join()
        self._raise()

    def stop(self) -> None:
        self._batches.put(None)
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


class StoreRecorder(Consumer):
    """Mirrors every trial's status, params and per-epoch metrics into the store."""

    def __init__(
        self,
        store: Store,
        experiment_id: int,
        metric: str,
        constraints: Sequence[Constraint] = (),
    ):
        self.store = store
        self.experiment_id = experiment_id
        self.metric = metric
        self.constraints = list(constraints)  # each trial's feasibility is stored with them
        self._trials: dict[str, dict[str, Any]] = {}  # pending column updates by trial id
        self._results: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._writer: _Writer | None = None  # started at the first batch written in the back

    # Ray Tune pickles its callbacks with the experiment's state; a thread is not picklable.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_writer": None}

    def _stage(self, trial: StoredTrial, **columns: Any) -> None:
        row = self._trials.get(trial.trial_id)
        if row is None:
            row = self._trials[trial.trial_id] = {
                "experiment_id": self.experiment_id,
                "trial_id": trial.trial_id,
            }
        row.update(columns)

    def _take(self) -> _Batch:
        trial_rows, self._trials = list(self._trials.values()), {}
        result_rows, self._results = self._results, []
        self._last_flush = time.monotonic()
        return trial_rows, result_rows

    def flush(self) -> None:
        """Write everything staged, and return once it is in the store."""
        batch = self._take()
        if self._writer is not None:
            self._writer.put(batch)
            self._writer.wait()
        else:
            self.store.write(*batch)

    def _flush_in_the_back(self) -> None:
        if self._writer is None:
            self._writer = _Writer(self.store)
        self._writer.put(self._take())

    def close(self) -> None:
        """Write what is staged and stop the writer (the run is over, or failed)."""
        try:
            self.flush()
        finally:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.stop()

    def receive(self, event: Event) -> None:
        match event:
            case TrialReported():
                self._reported(event)
            case StepEnded():
                if time.monotonic() - self._last_flush >= FLUSH_EVERY_S:
                    self._flush_in_the_back()
            case TrialAdded(trial=trial):
                self._stage(
                    trial,
                    number=trial.number,
                    status=trial.status.value,
                    params=trial.params,
                    config=trial.config,
                )
            case TrialStarted(trial=trial, first=True):
                self._stage(trial, status=trial.status.value, started_at=now())
                self.flush()
            case TrialStarted(trial=trial):  # it keeps its start; an earlier error is over
                self._stage(
                    trial,
                    status=trial.status.value,
                    ended_at=None,
                    error=None,
                    error_type=None,
                    error_traceback=None,
                )
                self.flush()
            case TrialEnded(trial=trial, error=error, checkpoint=checkpoint):
                columns: dict[str, Any] = {"status": trial.status.value, "ended_at": now()}
                if error is not None:
                    columns.update(
                        error_type=error.type, error=error.message, error_traceback=error.traceback
                    )
                    # A trial out of memory before its first report still has its peak.
                    if error.peak_memory_mb is not None:
                        columns["peak_memory_mb"] = error.peak_memory_mb
                    if error.micro_batches is not None:
                        columns["micro_batches"] = error.micro_batches
                if checkpoint:
                    columns["checkpoint_path"] = checkpoint
                self._stage(trial, **columns)
                self.flush()
            case TrialRepeated(trial=trial):
                self._stage(
                    trial,
                    number=trial.number,
                    status=trial.status.value,
                    params=trial.params,
                    config=trial.config,
                    repeat_of=trial.repeat_of,
                    ended_at=now(),
                )
                self.flush()
            case TrialExploited(trial=trial, source=source, iteration=iteration, params=params):
                self.flush()  # both trials' rows are in the store before the segment refers to them
                self.store.add_segment(
                    self.experiment_id,
                    trial.trial_id,
                    start_iteration=iteration,
                    params=params,
                    source_trial_id=source.trial_id,
                    source_number=source.number,
                )
            case SearchEnded():
                self.flush()

    def _reported(self, event: TrialReported) -> None:
        trial, step, metrics = event.trial, event.iteration, event.metrics
        if event.again:
            # A retried or resumed trial continues from its checkpoint and reports these
            # epochs again: its new results replace the old ones.
            self._results = [
                r
                for r in self._results
                if not (r["trial_id"] == trial.trial_id and r["iteration"] >= step)
            ]
            self.flush()
            self.store.delete_results(self.experiment_id, trial.trial_id, step)
        self._results.append(
            {
                "experiment_id": self.experiment_id,
                "trial_id": trial.trial_id,
                "iteration": step,
                "metrics": metrics,
                "reported_at": now(),
            }
        )
        # The event's dicts are its own (the stream makes new ones for every result): no copy.
        self._stage(
            trial,
            iterations=step,
            last_result=metrics,
            final_metrics=metrics,
            best_metrics=trial.best,
            value=metrics.get(self.metric),
            best_value=trial.best.get(self.metric),
            node=event.node,
            **_memory_columns(metrics),
            **({"feasible": feasible(self.constraints, metrics)} if self.constraints else {}),
        )


def _memory_columns(metrics: dict[str, float]) -> dict[str, Any]:
    """The trial's columns of what its trainable reported of its memory (where it did)."""
    columns: dict[str, Any] = {}
    if "peak_memory_mb" in metrics:
        columns["peak_memory_mb"] = metrics["peak_memory_mb"]
    if "micro_batches" in metrics:
        columns["micro_batches"] = int(metrics["micro_batches"])
    return columns
