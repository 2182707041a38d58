"""Datasets by name, and the splits every trial trains, validates and tests on.

hpo's in-memory datasets (scikit-learn's, synthetic, files) are loaded once per experiment
(in the driver) and shared with trials through Ray's object store; each trial only splits
and standardises them. Datasets that live on disk (`image_folder`) and a user's own data
function are opened in each trial instead (`hpo.trainable.datasets.open_data`), so that the
driver never reads them: `loaded_in_driver` tells the two apart. This module imports neither
torch nor Ray: the spec's validation reads its registry. A plugin adds a `DatasetEntry` (or
an `hpo._registry.Entry` of one, naming its options) through the `hpo.datasets` entry point
group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo._registry import Entry, Registry
from hpo.trainable.user_code import is_reference

if TYPE_CHECKING:
    from hpo.trainable.config import DataConfig


class Task(str, Enum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    # A user's own Pipeline and data only (`data.task: detection`): hpo has no detection
    # dataset or loss of its own, but its loop and its detection metrics apply.
    DETECTION = "detection"


@dataclass(frozen=True)
class Dataset:
    """Features and targets of a whole dataset, before any split.

    `x` is kept flat, one row per sample; `input_shape` is the shape a model sees for one
    sample (`(features,)` for tables, `(channels, height, width)` for images).
    """

    x: np.ndarray  # float32, shape (n, features)
    y: np.ndarray  # int64 class labels 0..k-1, or float32 targets
    task: Task
    input_shape: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.input_shape:
            object.__setattr__(self, "input_shape", (self.x.shape[1],))
        if int(np.prod(self.input_shape)) != self.x.shape[1]:
            raise ValueError(
                f"input_shape {list(self.input_shape)} holds {int(np.prod(self.input_shape))} "
                f"values, but each sample has {self.x.shape[1]} features"
            )
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    @property
    def num_outputs(self) -> int:
        return int(self.y.max()) + 1 if self.task is Task.CLASSIFICATION else 1


@dataclass(frozen=True)
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    # Regression targets are standardised too (the loss is then well scaled for any units);
    # predictions are mapped back with these before metrics are computed.
    y_mean: float = 0.0
    y_std: float = 1.0


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset (the registry holds the config keys it reads).

    Attributes:
        task: known before loading, so specs can be checked early (None: the config says).
        load: builds the arrays from the data config, in the driver (None for a dataset
            opened in the trial).
        open_in_trial: 'package.module:function' that opens the data inside each trial,
            given the data config, and returns what a user's data function returns (a torch
            Dataset, or a mapping of "train", "val" and "test" ones). A reference rather
            than the function, so that this registry stays free of torch. None: `load` it
            in the driver.
    """

    task: Task | None
    load: Callable[[DataConfig], Dataset] | None
    open_in_trial: str | None = None

    def __post_init__(self) -> None:
        if (self.load is None) == (self.open_in_trial is None):
            raise ValueError(
                "a DatasetEntry needs exactly one of `load` (in the driver) and "
                f"`open_in_trial` (in each trial), but got load={self.load!r}, "
                f"open_in_trial={self.open_in_trial!r}"
            )


def make_dataset(x: Any, y: Any, task: Task, input_shape: Any = None) -> Dataset:
    """Arrays in any numeric form to a `Dataset`: flat float32 rows, encoded labels.

    Samples with more than one dimension keep their shape as `input_shape` (a 2-D sample is
    one channel: `(1, height, width)`). Class labels of any type are encoded as 0..k-1.
    """
    task = Task(task)  # "regression" as well as Task.REGRESSION
    x = np.asarray(x)
    y = np.asarray(y)
    shape = tuple(input_shape) if input_shape else tuple(x.shape[1:])
    if len(shape) == 2:
        shape = (1, *shape)
    x = x.reshape(len(x), -1).astype(np.float32)
    if task is Task.CLASSIFICATION:
        y = np.unique(y, return_inverse=True)[1].reshape(-1).astype(np.int64)
    else:
        y = y.reshape(len(y)).astype(np.float32)
    return Dataset(x, y, task, shape)


def _sklearn(
    loader_name: str, task: Task, input_shape: tuple[int, ...] = (), *, description: str
) -> Entry[DatasetEntry]:
    def load(cfg: DataConfig) -> Dataset:
        import sklearn.datasets

        x, y = getattr(sklearn.datasets, loader_name)(return_X_y=True)
        return make_dataset(x, y, task, input_shape)

    return Entry(DatasetEntry(task, load), description=f"scikit-learn's {description}")


def _synthetic(task: Task) -> Entry[DatasetEntry]:
    def load(cfg: DataConfig) -> Dataset:
        import sklearn.datasets

        informative = cfg.n_informative or max(1, cfg.n_features // 2)
        if informative > cfg.n_features:
            raise ValueError(
                f"n_informative ({informative}) cannot exceed n_features ({cfg.n_features})"
            )
        if task is Task.CLASSIFICATION:
            x, y = sklearn.datasets.make_classification(
                n_samples=cfg.n_samples,
                n_features=cfg.n_features,
                n_informative=informative,
                n_redundant=0,
                n_classes=cfg.n_classes,
                random_state=cfg.data_seed,
            )
        else:
            x, y = sklearn.datasets.make_regression(
                n_samples=cfg.n_samples,
                n_features=cfg.n_features,
                n_informative=informative,
                noise=cfg.noise,
                random_state=cfg.data_seed,
            )
        return make_dataset(x, y, task)

    options = {"n_samples", "n_features", "n_informative", "data_seed"}
    options |= {"n_classes"} if task is Task.CLASSIFICATION else {"noise"}
    return Entry(
        DatasetEntry(task, load), frozenset(options), f"random {task.value} data (scikit-learn)"
    )


def _file(cfg: DataConfig) -> Dataset:
    path = Path(cfg.path or "")
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} not found (from {Path.cwd()})")
    suffix = path.suffix.lower()
    assert cfg.task is not None  # DataConfig requires it for files
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            missing = {"x", "y"} - set(arrays.files)
            if missing:
                raise ValueError(
                    f"{path} lacks the array(s) {sorted(missing)} (has {arrays.files})"
                )
            return make_dataset(arrays["x"], arrays["y"], cfg.task, cfg.input_shape)
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ValueError(f"unsupported data file {path.name!r}; use .csv, .parquet or .npz")
    import pandas as pd

    frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    if cfg.target not in frame.columns:
        raise ValueError(
            f"target column {cfg.target!r} is not in {path.name}; columns: {', '.join(map(str, frame.columns))}"
        )
    features = frame.drop(columns=[cfg.target])
    non_numeric = [c for c in features.columns if not np.issubdtype(features[c].dtype, np.number)]
    if non_numeric:
        raise ValueError(f"feature columns must be numeric; not numeric: {non_numeric}")
    return make_dataset(
        features.to_numpy(), frame[cfg.target].to_numpy(), cfg.task, cfg.input_shape
    )


# The keys every dataset reads; each registered one names the others it reads.
# `class_names` only names classes in the best model's evaluation (hpo.trainable.diagnostics).
COMMON_OPTIONS = frozenset(
    {"name", "val_fraction", "test_fraction", "standardize", "class_names"}
)
# What a user's function reads (it returns its arrays; the config says what they are).
USER_OPTIONS = frozenset({"task", "input_shape", "num_classes", "path", "image_size"})
# What the built-in image folder reads.
IMAGE_FOLDER_OPTIONS = frozenset({"path", "image_size", "annotations", "channels", "num_classes"})

# name -> dataset; the spec's `data.name` is checked against these names.
DATASETS: Registry[DatasetEntry] = Registry(
    "dataset", group="hpo.datasets", plugin_options=USER_OPTIONS, accepts=DatasetEntry
)
for _name, _entry in {
    # The 8x8 digits are images: a cnn sees them as one channel of 8x8 pixels.
    "digits": _sklearn(
        "load_digits", Task.CLASSIFICATION, (1, 8, 8), description="8x8 images of digits"
    ),
    "iris": _sklearn("load_iris", Task.CLASSIFICATION, description="iris flowers"),
    "wine": _sklearn("load_wine", Task.CLASSIFICATION, description="wines"),
    "breast_cancer": _sklearn(
        "load_breast_cancer", Task.CLASSIFICATION, description="breast cancer diagnoses"
    ),
    "diabetes": _sklearn("load_diabetes", Task.REGRESSION, description="diabetes progression"),
    "classification": _synthetic(Task.CLASSIFICATION),
    "regression": _synthetic(Task.REGRESSION),
    "file": Entry(
        DatasetEntry(None, _file),
        frozenset({"task", "path", "target", "input_shape"}),
        "a .csv, .parquet or .npz file (data.path)",
    ),
    "image_folder": Entry(
        DatasetEntry(
            Task.CLASSIFICATION,
            None,
            open_in_trial="hpo.trainable.image_folder:open_image_folder",
        ),
        IMAGE_FOLDER_OPTIONS,
        "a folder of images (data.path): one subfolder per class, or data.annotations, a "
        "JSON file mapping file names to labels; opened in each trial",
    ),
}.items():
    DATASETS.register(_name, _entry.value, options=_entry.options, description=_entry.description)


def dataset_task(data: DataConfig) -> Task:
    """The task of the configured data, known without loading it."""
    task = DATASETS[data.name].task if data.name in DATASETS else None
    # A user's own function trains a classifier unless its config says otherwise.
    return task or Task(data.task or Task.CLASSIFICATION)


def loaded_in_driver(data: DataConfig) -> bool:
    """Whether the configured data is loaded once in the driver (`load_dataset`) and shipped
    to trials, rather than opened in each trial.

    True for hpo's in-memory datasets (scikit-learn's, synthetic, files); False for datasets
    opened in the trial (`image_folder`) and for a user's own `package.module:function`,
    which may return a Dataset of many GB on disk that the driver must never read.
    """
    if is_reference(data.name):
        return False
    return DATASETS[data.name].open_in_trial is None


def load_dataset(data: DataConfig) -> Dataset:
    """Load the configured dataset (once per experiment, in the driver).

    Raises:
        ValueError: the data is opened in each trial instead (see `loaded_in_driver`).
    """
    if not loaded_in_driver(data):
        kind = "a data function" if is_reference(data.name) else "dataset"
        raise ValueError(
            f"{kind} {data.name!r} is opened in each trial "
            "(hpo.trainable.datasets.open_data), not loaded in the driver; check "
            "hpo.trainable.data.loaded_in_driver(data) before calling load_dataset"
        )
    load = DATASETS[data.name].load
    assert load is not None  # loaded_in_driver: an entry without `open_in_trial` has `load`
    return load(data)


def split(
    dataset: Dataset,
    val_fraction: float,
    seed: int,
    *,
    test_fraction: float = 0.0,
    standardize: bool = True,
) -> Splits:
    """Train/validation(/test) splits, stratified for classification, standardised on train only.

    Images are standardised with one mean and deviation per channel, so that a shifted
    image still has the same background; tables with one per feature.
    """
    from hpo.trainable._split import train_test_split

    stratify = dataset.task is Task.CLASSIFICATION
    x, y = dataset.x, dataset.y
    x_test = y_test = None
    if test_fraction > 0:
        x, x_test, y, y_test = train_test_split(x, y, test_fraction, seed, stratify=stratify)
    # The validation share is of the whole dataset, so adding a test split keeps it the same.
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, val_fraction / (1 - test_fraction), seed, stratify=stratify
    )
    y_mean, y_std = 0.0, 1.0
    if standardize:  # fitted on train only: no leak from validation or test
        mean, std = _statistics(x_train, dataset.input_shape)
        x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
        x_test = None if x_test is None else (x_test - mean) / std
        if dataset.task is Task.REGRESSION:
            y_mean, y_std = float(y_train.mean()), float(y_train.std()) or 1.0
            y_train, y_val = (y_train - y_mean) / y_std, (y_val - y_mean) / y_std
            y_test = None if y_test is None else (y_test - y_mean) / y_std
    return Splits(
        x_train=_float32(x_train),
        y_train=_targets(y_train),
        x_val=_float32(x_val),
        y_val=_targets(y_val),
        x_test=None if x_test is None else _float32(x_test),
        y_test=None if y_test is None else _targets(y_test),
        y_mean=y_mean,
        y_std=y_std,
    )


def _float32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _targets(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y, dtype=np.int64 if y.dtype.kind in "iu" else np.float32)


def _statistics(x: np.ndarray, input_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    if len(input_shape) == 3:
        channels = x.reshape(len(x), input_shape[0], -1)
        mean = np.repeat(channels.mean(axis=(0, 2)), channels.shape[2])
        std = np.repeat(channels.std(axis=(0, 2)), channels.shape[2])
    else:
        mean, std = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)  # constant features stay as they are, centred
