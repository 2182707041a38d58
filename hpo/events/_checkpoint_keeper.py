"""Keep the checkpoints of the experiment's best trials only."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ray.tune import Callback

from hpo.resuming import split, store_trial_id
from hpo.store import Store, TrialStatus


class BestCheckpoints(Callback):
    """Keeps the checkpoints of the experiment's best `keep_trials` trials and deletes the rest
    as trials end, so that pruned and worse trials do not fill the disk."""

    def __init__(self, store: Store, experiment_id: int, metric: str, mode: str, keep_trials: int):
        self.store = store
        self.experiment_id = experiment_id
        self.metric = metric
        self.mode = mode
        self.keep_trials = keep_trials
        # Best first: value, trial id, the folders that hold its checkpoints. In a resumed
        # run, the earlier runs' finished trials that kept theirs count too.
        self._kept: list[tuple[float, str, list[Path]]] = [
            (row["best_value"], row["trial_id"], [Path(row["checkpoint_path"]).parent])
            for row in store.trial_rows(
                experiment_id, ["trial_id", "status", "best_value", "checkpoint_path"]
            )
            if row["status"] in (TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value)
            and row["checkpoint_path"]
            and row["best_value"] is not None
        ]
        self._kept.sort(key=lambda kept: kept[0], reverse=self.mode == "max")

    def _ended(self, trial: Any, value: float | None) -> None:
        if not trial.path:
            return
        # Tune's trial folder, a DDP trial's Ray Train run (see `hpo.trainable.distributed`),
        # and for a trial `hpo resume` continued, the folder of the checkpoint it started from.
        folders = [Path(trial.path), Path(trial.path).parent / f"ddp_{trial.trial_id}"]
        continuation = split(trial.config)[1]
        if continuation is not None and continuation.checkpoint:
            folders.append(Path(continuation.checkpoint).parent)
        if not any(any(f.glob("checkpoint_*")) for f in folders):
            return  # no checkpoint, or not on this machine's disk
        if value is None or value != value:  # failed, or never reported the metric
            self._drop(store_trial_id(trial), folders)
            return
        self._kept.append((value, store_trial_id(trial), folders))
        self._kept.sort(key=lambda kept: kept[0], reverse=self.mode == "max")
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

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, trial.metric_analysis.get(self.metric, {}).get(self.mode))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, None)

