"""The consumer through which the driver, and only the driver, writes the store.

Results are buffered and written in batched transactions (at most about once a second, and
at every trial's start and end), so the store costs the search little.
"""

from __future__ import annotations

import time
from typing import Any

from hpo.events._events import (
    Consumer,
    Event,
    SearchEnded,
    StepEnded,
    StoredTrial,
    TrialAdded,
    TrialEnded,
    TrialReported,
    TrialStarted,
)
from hpo.store import Store, now

FLUSH_EVERY_S = 1.0


class StoreRecorder(Consumer):
    """Mirrors every trial's status, params and per-epoch metrics into the store."""

    def __init__(self, store: Store, experiment_id: int, metric: str):
        self.store = store
        self.experiment_id = experiment_id
        self.metric = metric
        self._trials: dict[str, dict[str, Any]] = {}  # pending column updates by trial id
        self._results: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()

    def _stage(self, trial: StoredTrial, **columns: Any) -> None:
        row = self._trials.setdefault(
            trial.trial_id, {"experiment_id": self.experiment_id, "trial_id": trial.trial_id}
        )
        row.update(columns)

    def flush(self) -> None:
        trial_rows, self._trials = list(self._trials.values()), {}
        result_rows, self._results = self._results, []
        self.store.write(trial_rows, result_rows)
        self._last_flush = time.monotonic()

    def receive(self, event: Event) -> None:
        match event:
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
            case TrialReported():
                self._reported(event)
            case TrialEnded(trial=trial, error=error, checkpoint=checkpoint):
                columns: dict[str, Any] = {"status": trial.status.value, "ended_at": now()}
                if error is not None:
                    columns.update(
                        error_type=error.type, error=error.message, error_traceback=error.traceback
                    )
                if checkpoint:
                    columns["checkpoint_path"] = checkpoint
                self._stage(trial, **columns)
                self.flush()
            case StepEnded():
                if time.monotonic() - self._last_flush >= FLUSH_EVERY_S:
                    self.flush()
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
        self._stage(
            trial,
            iterations=step,
            last_result=metrics,
            final_metrics=metrics,
            best_metrics=dict(trial.best),
            value=metrics.get(self.metric),
            best_value=trial.best.get(self.metric),
            node=event.node,
        )
