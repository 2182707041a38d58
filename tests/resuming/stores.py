"""Stores and checkpoints as a stopped run leaves them, written by the tests (no Ray run)."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter

from hpo.resuming import History
from hpo.search import Distribution, Space
from hpo.store import Store, TrialStatus, now

SPACE = {
    "optimizer.lr": {"type": "float", "low": 5e-4, "high": 5e-2, "log": True},
    "model.hidden_size": {"type": "int", "low": 8, "high": 32},
}


def space() -> Space:
    return Space(
        {key: TypeAdapter(Distribution).validate_python(raw) for key, raw in SPACE.items()}
    )


def _trial(number: int, status: TrialStatus, lr: float) -> dict:
    return {
        "experiment_id": 1,
        "trial_id": f"t{number}",
        "number": number,
        "status": status.value,
        "params": {"optimizer.lr": lr, "model.hidden_size": 16},
        "config": {"optimizer": {"lr": lr}, "model": {"hidden_size": 16}},
        "value": 0.5 + number / 100,
    }


def _results(number: int, epochs: int) -> list[dict]:
    return [
        {
            "experiment_id": 1,
            "trial_id": f"t{number}",
            "iteration": epoch,
            "metrics": {"val_accuracy": 0.5 + number / 100 + epoch / 1000, "val_loss": 1 / epoch},
            "reported_at": now(),
        }
        for epoch in range(1, epochs + 1)
    ]


def checkpoint(folder: Path, trial_id: str, iteration: int, *, results: bool = True) -> Path:
    """A checkpoint as hpo's trainable saves it: holding the trial's results up to it (made up
    here), or without them (as an older hpo saved it)."""
    from ray.tune import Checkpoint

    path = folder / f"trial_{trial_id}" / f"checkpoint_{iteration:06d}"
    path.mkdir(parents=True)
    history = History(trial_id)
    for epoch in range(1, iteration + 1):
        history.add(epoch, {"val_accuracy": 0.9 + epoch / 1000, "epoch": epoch})
    metadata = history.metadata()
    if not results:
        del metadata["results"]
    Checkpoint.from_directory(str(path)).set_metadata(metadata)
    return path


def stopped_experiment(tmp_path: Path) -> tuple[Store, dict, Path]:
    """A store as a killed run leaves it: 2 trials finished, 1 errored, 2 running (one with
    checkpoints, one whose latest checkpoint is newer than the store's results), 1 waiting."""
    store = Store(f"sqlite:///{tmp_path / 'hpo.db'}")
    spec = {
        "metric": "val_accuracy",
        "mode": "max",
        "searcher": {"name": "optuna"},
        "scheduler": {"name": "asha"},
        "seed": 0,
        "num_trials": 8,
    }
    experiment_id, _ = store.create_experiment("stopped", spec, storage_path=str(tmp_path))
    assert experiment_id == 1
    statuses = [
        TrialStatus.COMPLETED,
        TrialStatus.PRUNED,
        TrialStatus.ERROR,
        TrialStatus.RUNNING,
        TrialStatus.RUNNING,
        TrialStatus.PENDING,
    ]
    epochs = [4, 1, 2, 3, 2, 0]
    store.write(
        [_trial(n, status, 0.001 * (n + 1)) for n, status in enumerate(statuses)],
        [row for n, e in enumerate(epochs) for row in _results(n, e)],
    )
    folders = tmp_path / "stopped"
    checkpoint(folders, "t3", 1)
    checkpoint(folders, "t3", 2)
    checkpoint(folders, "t3", 5, results=False)  # past the store, and not saying what it saw
    checkpoint(folders, "t4", 4)  # saved after the store's last result for t4 (epoch 2)
    return store, store.experiment("stopped"), folders
