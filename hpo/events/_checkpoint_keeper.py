"""Keep the checkpoints of the experiment's best trials only."""

from __future__ import annotations

import shutil
from pathlib import Path

from hpo.events._events import Consumer, Event, TrialEnded
from hpo.store import Store, TrialStatus
from hpo.types import Mode


class BestCheckpoints(Consumer):
    """Keeps the checkpoints of the experiment's best `keep_trials` trials and deletes the rest
    as trials end, so that pruned and worse trials do not fill the disk."""

    def __init__(
        self, store: Store, experiment_id: int, metric: str, mode: Mode | str, keep_trials: int
    ):
        self.store = store
        self.experiment_id = experiment_id
        self.metric = metric
        self.mode = Mode(mode)
        self.keep_trials = keep_trials
        # Best first: value, trial id, the folders that hold its checkpoints. In a resumed
        # run, the earlier runs' finished trials that kept theirs count too.
        self._kept: list[tuple[float, str, list[Path]]] = [
            (row["best_value"], row["trial_id"], [Path(row["checkpoint_path"]).parent])
            for row in store.trial_rows(
                experiment_id, ["trial_id", "status", "best_value", "checkpoint_path"]
            )
            if TrialStatus(row["status"]).succeeded
            and row["checkpoint_path"]
            and row["best_value"] is not None
        ]
        self._kept.sort(key=lambda kept: kept[0], reverse=self.mode is Mode.MAX)

    def receive(self, event: Event) -> None:
        if not isinstance(event, TrialEnded):
            return
        folders = list(event.folders)
        if not any(any(f.glob("checkpoint_*")) for f in folders):
            return  # no checkpoint, or not on this machine's disk
        trial = event.trial
        # A failed trial's checkpoints go, as those of one that never reported the metric.
        value = None if trial.status is TrialStatus.ERROR else trial.best.get(self.metric)
        if value is None:
            self._drop(trial.trial_id, folders)
            return
        self._kept.append((value, trial.trial_id, folders))
        self._kept.sort(key=lambda kept: kept[0], reverse=self.mode is Mode.MAX)
        for _, trial_id, dropped in self._kept[self.keep_trials :]:
            self._drop(trial_id, dropped)
        del self._kept[self.keep_trials :]

    def _drop(self, trial_id: str, folders: list[Path]) -> None:
        for checkpoint in (c for folder in folders for c in folder.glob("checkpoint_*")):
            shutil.rmtree(checkpoint, ignore_errors=True)
        self.store.write(
            [{"experiment_id": self.experiment_id, "trial_id": trial_id, "checkpoint_path": None}],
            [],
        )
