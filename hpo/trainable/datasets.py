"""What one trial trains, validates and tests on, opened inside the trial (`open_data`).

Three sources:
- hpo's in-memory datasets, loaded once in the driver and shipped to trials: split and
  standardised here, then kept whole on the device (`TensorPair`);
- datasets opened in the trial, `image_folder` and registered ones like it, and a user's
  own `package.module:function`: torch Datasets, split here with the experiment's seed
  (stratified by label where the dataset has `targets` or `labels`), wrapped with the
  declared train and eval transforms;
- a user's function that returns arrays, which take the in-memory path.

Nothing here runs in the driver for data opened in the trial: a dataset of many GB on
disk is read by the trials that train on it, and by no one else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Subset

from hpo.trainable.data import (
    DATASETS,
    Dataset,
    Task,
    dataset_task,
    load_dataset,
    make_dataset,
    split,
)
from hpo.trainable.image_folder import ImageFolder
from hpo.trainable.transforms import build_transform
from hpo.trainable.user_code import is_reference, load_callable

if TYPE_CHECKING:
    from hpo.trainable.config import TrainableConfig

__all__ = ["DataParts", "TensorPair", "Transformed", "open_data", "split_dataset"]


@dataclass
class TensorPair:
    """A whole split of in-memory data on the trial's device: inputs shaped
    `(n, *input_shape)`, and targets."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class DataParts:
    """What one trial trains, validates and tests on.

    Attributes:
        task: classification or regression.
        train, val, test: torch Datasets, or `TensorPair`s for hpo's in-memory datasets
            (test is None without a test split).
        num_outputs: classes (classification) or 1 (regression); None: unknown, so the
            model's own outputs decide (a user's dataset without labels to count).
        input_shape: one sample's input shape (read from the first training sample of a
            torch Dataset; None for dict samples, whose inputs are several tensors).
        y_mean, y_std: the standardisation of in-memory regression targets, to map
            predictions back to the target's units.
    """

    task: Task
    train: Any
    val: Any
    test: Any | None
    num_outputs: int | None
    input_shape: tuple[int, ...] | None
    y_mean: float = 0.0
    y_std: float = 1.0


class Transformed(torch.utils.data.Dataset):
    """A Dataset of `(input, target)` items with `transform` applied to each input."""

    def __init__(self, dataset: Any, transform: Callable[[Any], Any]) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        if isinstance(item, tuple | list) and len(item) >= 1:
            return (self.transform(item[0]), *item[1:])
        raise TypeError(
            f"declared transforms apply to the input of (input, target) items, but the "
            f"dataset's item {index} is a {type(item).__name__}; apply transforms of dict "
            "items in your Dataset's __getitem__"
        )


def open_data(
    config: TrainableConfig, dataset: Dataset | None = None, *, device: torch.device
) -> DataParts:
    """The configured data, split, in this trial.

    Args:
        config: the trial's config (`data`, `transforms` and `seed` are read).
        dataset: hpo's in-memory dataset, loaded once in the driver (None: open the data
            here, loading an in-memory dataset here if it is one).
        device: where in-memory splits are kept.

    Raises:
        TypeError: a data function returned something other than a torch Dataset, a
            mapping of them, arrays or an hpo Dataset.
        ValueError: a split would be empty, or a stratified split lacks samples.
    """
    data = config.data
    if dataset is not None:
        return _in_memory(config, dataset, device)
    if is_reference(data.name):
        # The function receives the data section as a dict, with its own keys.
        returned = load_callable(data.name)(data.model_dump())
    elif DATASETS[data.name].open_in_trial is None:
        # An in-memory dataset opened without the driver's arrays (a plain script, a test).
        return _in_memory(config, load_dataset(data), device)
    else:
        opener = DATASETS[data.name].open_in_trial
        assert opener is not None
        returned = load_callable(opener)(data)
    return _returned(config, returned, device)


def _in_memory(config: TrainableConfig, dataset: Dataset, device: torch.device) -> DataParts:
    data = config.data
    splits = split(
        dataset,
        data.val_fraction,
        config.seed,
        test_fraction=data.test_fraction,
        standardize=data.standardize,
    )
    shape = dataset.input_shape

    def pair(x: np.ndarray, y: np.ndarray) -> TensorPair:
        inputs = torch.from_numpy(x).view(len(x), *shape)
        return TensorPair(inputs.to(device), torch.from_numpy(y).to(device))

    return DataParts(
        task=dataset.task,
        train=pair(splits.x_train, splits.y_train),
        val=pair(splits.x_val, splits.y_val),
        test=None if splits.x_test is None else pair(splits.x_test, splits.y_test),
        num_outputs=_num_outputs(config, dataset.task, dataset.num_outputs),
        input_shape=tuple(shape),
        y_mean=splits.y_mean,
        y_std=splits.y_std,
    )


def _returned(config: TrainableConfig, returned: Any, device: torch.device) -> DataParts:
    """DataParts of what a data function (or a registered opener) returned."""
    data = config.data
    task = dataset_task(data)
    if isinstance(returned, Dataset):
        return _in_memory(config, returned, device)
    if isinstance(returned, tuple) and len(returned) == 2 and not _is_dataset(returned[0]):
        x, y = (_array(part) for part in returned)
        dataset = make_dataset(x, y, task, data.input_shape)
        return _in_memory(config, dataset, device)
    train_t, eval_t = (
        build_transform(items) for items in (config.transforms.train, config.transforms.eval)
    )
    if isinstance(returned, Mapping):
        unknown = sorted(set(returned) - {"train", "val", "test"})
        missing = sorted({"train", "val"} - set(returned))
        if unknown or missing:
            raise TypeError(
                f"{data.name} returned a mapping with the keys {sorted(returned)}; it needs "
                f'"train" and "val" Datasets, and may have "test"'
            )
        for key, part in returned.items():
            if part is not None and not _is_dataset(part):
                raise TypeError(
                    f"{data.name} returned {type(part).__name__} as {key!r}; it must be a torch "
                    "Dataset (with __getitem__ and __len__)"
                )
        train = _transformed(returned["train"], train_t)
        val = _transformed(returned["val"], eval_t)
        test = returned.get("test")
        test = None if test is None else _transformed(test, eval_t)
        labels = _labels(returned["train"])
    elif _is_dataset(returned):
        train_idx, val_idx, test_idx = split_dataset(
            returned, data.val_fraction, config.seed, test_fraction=data.test_fraction, task=task
        )
        train = Subset(_transformed(returned, train_t), train_idx)
        val = Subset(_transformed(returned, eval_t), val_idx)
        test = None if test_idx is None else Subset(_transformed(returned, eval_t), test_idx)
        labels = _labels(returned)
    else:
        raise TypeError(
            f"{data.name} returned a {type(returned).__name__}; a data function returns a torch "
            'Dataset, a mapping of "train", "val" (and "test") Datasets, a tuple (x, y) of '
            "arrays, or an hpo.trainable.Dataset"
        )
    found = None
    if task is Task.REGRESSION:
        found = 1
    elif isinstance(returned, ImageFolder):
        found = len(returned.classes)
    elif labels is not None and len(labels):
        found = int(np.max(labels)) + 1
    return DataParts(
        task=task,
        train=train,
        val=val,
        test=test,
        num_outputs=_num_outputs(config, task, found),
        input_shape=_input_shape(train),
    )


def _is_dataset(value: Any) -> bool:
    """A torch Dataset, or any map-style dataset (`__getitem__` and `__len__`), but not arrays."""
    if isinstance(value, np.ndarray | torch.Tensor | list | tuple | str | Mapping):
        return False
    return isinstance(value, torch.utils.data.Dataset) or (
        hasattr(value, "__getitem__") and hasattr(value, "__len__")
    )


def _array(part: Any) -> np.ndarray:
    return part.detach().cpu().numpy() if isinstance(part, torch.Tensor) else np.asarray(part)


def _transformed(dataset: Any, transform: Callable[[Any], Any] | None) -> Any:
    if transform is None:
        return dataset
    if isinstance(dataset, ImageFolder):  # its raw images, then the declared transforms
        return dataset.with_transform(transform)
    return Transformed(dataset, transform)


def _labels(dataset: Any) -> np.ndarray | None:
    """The dataset's class labels (`targets`, else `labels`), read without loading items."""
    for attribute in ("targets", "labels"):
        labels = getattr(dataset, attribute, None)
        if labels is not None and not callable(labels):
            labels = _array(labels).reshape(-1)
            if len(labels) != len(dataset):
                raise ValueError(
                    f"the dataset's {attribute!r} has {len(labels)} labels for {len(dataset)} "
                    "items; it must hold one label per item"
                )
            return labels
    return None


def split_dataset(
    dataset: Any,
    val_fraction: float,
    seed: int,
    *,
    test_fraction: float = 0.0,
    task: Task = Task.CLASSIFICATION,
) -> tuple[list[int], list[int], list[int] | None]:
    """Indices of the train, validation and (None without) test splits of a torch Dataset.

    The same split as `hpo.trainable.data.split` draws for arrays: stratified by the
    dataset's `targets` or `labels` for classification, shuffled otherwise, with `seed`.
    """
    from hpo.trainable._split import train_test_split

    indices = np.arange(len(dataset))
    labels = _labels(dataset)
    stratify = task is Task.CLASSIFICATION and labels is not None
    y = labels if stratify else np.zeros(len(dataset))
    test = None
    if test_fraction > 0:
        indices, test, y, _ = train_test_split(indices, y, test_fraction, seed, stratify=stratify)
    # The validation share is of the whole dataset, as in `data.split`.
    train, val, _, _ = train_test_split(
        indices, y, val_fraction / (1 - test_fraction), seed, stratify=stratify
    )
    return train.tolist(), val.tolist(), None if test is None else test.tolist()


def _num_outputs(config: TrainableConfig, task: Task, found: int | None) -> int | None:
    declared = config.data.num_classes
    if task is Task.REGRESSION or declared is None:
        return found
    if found is not None and declared < found:
        raise ValueError(
            f"data.num_classes is {declared}, but the labels hold {found} classes "
            f"(0..{found - 1}); raise num_classes or leave it out"
        )
    return declared


def _input_shape(train: Any) -> tuple[int, ...] | None:
    """One training sample's input shape: ONE item is loaded, the dataset is never scanned."""
    if len(train) == 0:
        return None
    item = train[0]
    if isinstance(item, tuple | list) and item and hasattr(item[0], "shape"):
        return tuple(item[0].shape)
    return None
