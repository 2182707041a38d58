"""MLflow beside the store, written by the driver, as an option: one run per trial."""

from __future__ import annotations

import math
import time
from typing import Any

from hpo.events._events import (
    Consumer,
    Event,
    SearchStarted,
    StoredTrial,
    TrialEnded,
    TrialReported,
    TrialStarted,
)
from hpo.types import TrialStatus

# How MLflow names the ends of a run: a pruned trial was stopped on purpose.
_RUN_STATUS = {
    TrialStatus.COMPLETED: "FINISHED",
    TrialStatus.PRUNED: "KILLED",
    TrialStatus.ERROR: "FAILED",
}


class MlflowTracker(Consumer):
    """One MLflow run per trial: its active params at its start, its metrics every epoch, and
    its end (FINISHED, KILLED when pruned, FAILED), in the experiment `experiment_name`."""

    best_effort = True

    def __init__(self, tracking_uri: str | None, experiment_name: str, hpo_experiment: str):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.hpo_experiment = hpo_experiment
        self._runs: dict[str, str] = {}  # the trial's id in the store -> MLflow run id
        self._client: Any = None
        self._experiment_id: str | None = None

    # Ray pickles callbacks with the experiment's state; the client reconnects when needed.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    def receive(self, event: Event) -> None:
        match event:
            case SearchStarted():
                self._connect()
            case TrialStarted(trial=trial):
                self._started(trial)
            case TrialReported(trial=trial, iteration=step, metrics=metrics):
                self._reported(trial, step, metrics)
            case TrialEnded(trial=trial):
                run_id = self._runs.pop(trial.trial_id, None)
                if run_id is not None:
                    self._client.set_terminated(run_id, _RUN_STATUS[trial.status])

    def _connect(self) -> None:
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self._client.get_experiment_by_name(self.experiment_name)
        self._experiment_id = (
            found.experiment_id if found else self._client.create_experiment(self.experiment_name)
        )

    def _started(self, trial: StoredTrial) -> None:
        from mlflow.entities import Param

        run = self._client.create_run(
            self._experiment_id,
            run_name=f"{self.hpo_experiment}/trial_{trial.number:05d}",
            tags={
                "hpo.experiment": self.hpo_experiment,
                "hpo.trial_id": trial.trial_id,
                "hpo.number": str(trial.number),
            },
        )
        self._runs[trial.trial_id] = run.info.run_id
        params = [Param(key, str(value)) for key, value in trial.params.items()]
        self._client.log_batch(run.info.run_id, params=params)

    def _reported(self, trial: StoredTrial, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        run_id = self._runs.get(trial.trial_id)
        if run_id is None:
            return
        stamp = int(time.time() * 1000)
        found = [
            Metric(name, value, stamp, step)
            for name, value in metrics.items()
            if math.isfinite(value)
        ]
        self._client.log_batch(run_id, metrics=found)
