"""Datasets by name, and the split every trial trains on.

The raw arrays are loaded once per experiment (in the driver) and shared with trials
through Ray's object store; each trial only splits and standardises them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hpo.trainable.config import DataConfig


class Task(str, Enum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True)
class Dataset:
    """Features and targets of a whole dataset, before any split."""

    x: np.ndarray  # float32, shape (n, features)
    y: np.ndarray  # int64 class labels or float32 targets
    task: Task

    @property
    def num_outputs(self) -> int:
        return int(self.y.max()) + 1 if self.task is Task.CLASSIFICATION else 1


@dataclass(frozen=True)
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its task is known before loading, so specs can be checked early."""

    task: Task
    load: Callable[[], Dataset]


def _sklearn(loader_name: str, task: Task) -> DatasetEntry:
    def load() -> Dataset:
        import sklearn.datasets

        x, y = getattr(sklearn.datasets, loader_name)(return_X_y=True)
        y = y.astype(np.int64) if task is Task.CLASSIFICATION else y.astype(np.float32)
        return Dataset(x.astype(np.float32), y, task)

    return DatasetEntry(task, load)


# name -> dataset; the spec's `data.name` is checked against these keys.
DATASETS: dict[str, DatasetEntry] = {
    "digits": _sklearn("load_digits", Task.CLASSIFICATION),
    "iris": _sklearn("load_iris", Task.CLASSIFICATION),
    "wine": _sklearn("load_wine", Task.CLASSIFICATION),
    "breast_cancer": _sklearn("load_breast_cancer", Task.CLASSIFICATION),
    "diabetes": _sklearn("load_diabetes", Task.REGRESSION),
}


def load_dataset(data: DataConfig) -> Dataset:
    """Load the configured dataset (once per experiment, in the driver)."""
    return DATASETS[data.name].load()


def split(dataset: Dataset, val_fraction: float, seed: int) -> Splits:
    """A train/validation split (stratified for classification), standardised on train only."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    stratify = dataset.y if dataset.task is Task.CLASSIFICATION else None
    x_train, x_val, y_train, y_val = train_test_split(
        dataset.x, dataset.y, test_size=val_fraction, random_state=seed, stratify=stratify
    )
    scaler = StandardScaler().fit(x_train)  # fitted on train only: no leak from validation
    return Splits(
        scaler.transform(x_train).astype(np.float32),
        y_train,
        scaler.transform(x_val).astype(np.float32),
        y_val,
    )
