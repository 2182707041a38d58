"""Datasets of every kind, the splits, standardisation and augmentation."""

import re
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from hpo.trainable import DATASETS, Task, TrainableConfig, load_dataset, loaded_in_driver
from hpo.trainable.config import DataConfig, reported_metrics
from hpo.trainable.data import Dataset, split
from hpo.trainable.loop import fit
from hpo.trainable.pipeline import _shift

# Tiny models train fastest on one thread, and the test machine's cores are shared.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


BUILT_IN = {
    "digits": (1797, (1, 8, 8), Task.CLASSIFICATION, 10),
    "iris": (150, (4,), Task.CLASSIFICATION, 3),
    "wine": (178, (13,), Task.CLASSIFICATION, 3),
    "breast_cancer": (569, (30,), Task.CLASSIFICATION, 2),
    "diabetes": (442, (10,), Task.REGRESSION, 1),
    "classification": (1000, (20,), Task.CLASSIFICATION, 2),
    "regression": (1000, (20,), Task.REGRESSION, 1),
}


def test_every_named_dataset_is_tested():
    # image_folder is opened in the trial: tests/trainable/test_image_folder.py.
    assert set(BUILT_IN) | {"file", "image_folder"} == set(DATASETS)


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_built_in_datasets_load_and_train(name):
    rows, shape, task, outputs = BUILT_IN[name]
    dataset = load_dataset(DataConfig(name=name))
    assert (len(dataset.x), dataset.input_shape, dataset.task, dataset.num_outputs) == (
        rows,
        shape,
        task,
        outputs,
    )
    assert dataset.x.dtype == np.float32 and dataset.x.shape == (rows, int(np.prod(shape)))
    metric = "val_accuracy" if task is Task.CLASSIFICATION else "val_r2"
    last = list(
        fit({"data": {"name": name}, "training": {"epochs": 2}, "metric": metric}, dataset)
    )[-1]
    assert set(reported_metrics(DataConfig(name=name))) <= set(last)


def test_synthetic_data_has_its_size_and_is_seeded():
    config = DataConfig(
        name="classification", n_samples=300, n_features=7, n_informative=5, n_classes=4
    )
    a, b = load_dataset(config), load_dataset(config)
    assert a.x.shape == (300, 7) and a.num_outputs == 4
    np.testing.assert_array_equal(a.x, b.x)
    other = load_dataset(
        DataConfig(name="classification", n_samples=300, n_features=7, data_seed=1)
    )
    assert not np.array_equal(a.x, other.x)
    noisy = load_dataset(DataConfig(name="regression", n_samples=50, n_features=3, noise=5.0))
    assert noisy.task is Task.REGRESSION and noisy.y.dtype == np.float32


def _frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    label = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")  # string labels are encoded
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": label})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_files_with_a_target_column(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    frame = _frame()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    config = DataConfig(name="file", path=str(path), target="label", task="classification")
    dataset = load_dataset(config)
    assert dataset.x.shape == (120, 3) and dataset.num_outputs == 2
    np.testing.assert_array_equal(dataset.y, (frame["label"] == "yes").astype(int))
    last = list(
        fit(
            {"data": config.model_dump(), "training": {"epochs": 5}, "optimizer": {"lr": 1e-2}},
            dataset,
        )
    )[-1]
    assert last["val_accuracy"] > 0.8
    with pytest.raises(ValueError, match="target column 'y' is not in"):
        load_dataset(config.model_copy(update={"target": "y"}))


def test_npz_arrays_keep_their_image_shape(tmp_path):
    path = tmp_path / "images.npz"
    x = np.random.default_rng(0).random((40, 6, 6))
    np.savez(path, x=x, y=np.arange(40) % 2)
    dataset = load_dataset(DataConfig(name="file", path=str(path), task="classification"))
    assert dataset.input_shape == (1, 6, 6) and dataset.x.shape == (40, 36)
    np.savez(path, x=x.reshape(40, 36), y=np.arange(40) * 0.5)
    reshaped = load_dataset(
        DataConfig(name="file", path=str(path), task="regression", input_shape=[1, 6, 6])
    )
    assert reshaped.input_shape == (1, 6, 6) and reshaped.y.dtype == np.float32
    np.savez(path, features=x)
    with pytest.raises(ValueError, match=r"lacks the array\(s\) \['x', 'y'\]"):
        load_dataset(DataConfig(name="file", path=str(path), task="regression"))


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data file"):
        load_dataset(DataConfig(name="file", path=str(tmp_path / "none.csv"), task="regression"))
    (tmp_path / "data.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"unsupported data file 'data\.txt'"):
        load_dataset(DataConfig(name="file", path=str(tmp_path / "data.txt"), task="regression"))


def test_user_dataset_by_reference_is_called_in_the_trial_with_its_config(tmp_path, monkeypatch):
    """A data function is never loaded in the driver; the trial calls it with the data
    section (its own keys too), and arrays it returns take the in-memory path."""
    (tmp_path / "user_data.py").write_text(
        "import numpy as np\n\n"
        "def load(config):\n"
        "    x = np.linspace(-1, 1, 2 * config['rows']).reshape(config['rows'], 2)\n"
        "    return x, 3 * x[:, 0] - x[:, 1]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "user_data", raising=False)
    config = DataConfig(name="user_data:load", task="regression", rows=100)
    assert reported_metrics(config)[-3:] == ["val_mse", "val_mae", "val_r2"]
    assert not loaded_in_driver(config)
    with pytest.raises(ValueError, match="is opened in each trial"):
        load_dataset(config)
    last = list(
        fit({"data": config.model_dump(), "training": {"epochs": 30}, "optimizer": {"lr": 1e-2}})
    )[-1]
    assert last["val_r2"] > 0.9


def test_only_hpos_in_memory_datasets_are_loaded_in_the_driver(tmp_path):
    assert loaded_in_driver(DataConfig(name="digits"))
    assert loaded_in_driver(DataConfig(name="file", path="x.csv", task="regression"))
    image_folder = DataConfig(name="image_folder", path=str(tmp_path))
    assert not loaded_in_driver(image_folder)
    with pytest.raises(ValueError, match="'image_folder' is opened in each trial"):
        load_dataset(image_folder)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "mnist"},
            "unknown dataset 'mnist'; available: breast_cancer, classification, diabetes",
        ),
        ({"name": "file", "task": "regression"}, "dataset 'file' needs path"),
        ({"name": "digits", "n_samples": 50}, "n_samples does not apply to dataset 'digits'"),
        (
            {"name": "digits", "n_samples": 50, "noise": 0.1},
            "n_samples, noise do not apply to dataset 'digits'",
        ),
        (
            {"name": "regression", "n_classes": 3},
            "n_classes does not apply to dataset 'regression'; it reads:",
        ),
        (
            {"val_fraction": 0.5, "test_fraction": 0.5},
            "val_fraction + test_fraction must be below 1",
        ),
    ],
)
def test_data_config_errors(data, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainableConfig(data=data)


def test_split_is_stratified_and_standardised_on_train_only():
    wine = load_dataset(DataConfig(name="wine"))
    splits = split(wine, 0.2, seed=0, test_fraction=0.2)
    assert len(splits.x_val) == pytest.approx(0.2 * len(wine.x), abs=1)
    assert len(splits.x_test) == pytest.approx(0.2 * len(wine.x), abs=1)
    shares = [np.bincount(y) / len(y) for y in (splits.y_train, splits.y_val, splits.y_test)]
    assert max(np.abs(shares[0] - s).max() for s in shares[1:]) < 0.05
    # per feature, with train statistics: train columns are centred, the others only roughly
    assert np.abs(splits.x_train.mean(axis=0)).max() < 1e-5
    assert np.abs(splits.x_train.std(axis=0) - 1).max() < 1e-4
    assert np.abs(splits.x_val.mean(axis=0)).max() > 1e-3
    # the same seed gives the same split
    np.testing.assert_array_equal(split(wine, 0.2, seed=0, test_fraction=0.2).x_val, splits.x_val)


def test_images_are_standardised_per_channel_and_regression_targets_too():
    digits = load_dataset(DataConfig(name="digits"))
    splits = split(digits, 0.2, seed=0)
    # one mean and deviation for all pixels: the blank background stays one value
    assert splits.x_train.mean() == pytest.approx(0, abs=1e-5)
    assert splits.x_train.std() == pytest.approx(1, abs=1e-4)
    assert set(np.unique(splits.x_train[:, 0])) == {splits.x_train.min()}
    diabetes = split(load_dataset(DataConfig(name="diabetes")), 0.2, seed=0)
    assert diabetes.y_train.mean() == pytest.approx(0, abs=1e-5) and diabetes.y_std > 10
    raw = split(load_dataset(DataConfig(name="diabetes")), 0.2, seed=0, standardize=False)
    assert (raw.y_mean, raw.y_std) == (0.0, 1.0)
    assert raw.x_train.std() < 0.1  # as scikit-learn scales it, not to unit deviation


def test_shift_moves_images_and_fills_with_the_edge():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    shifted = torch.cat([_shift(image, 1, torch.Generator().manual_seed(s)) for s in range(40)])
    centres = {tuple(torch.nonzero(s[0] == 1.0)[0].tolist()) for s in shifted}
    assert centres == {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)}  # every offset in [-1, 1]
    assert (shifted.sum(dim=(1, 2, 3)) == 1).all()


def test_augmentation_applies_to_training_only():
    digits = load_dataset(DataConfig(name="digits"))
    from hpo.trainable.loop import Trainer

    trainer = Trainer({"augment": {"noise_std": 0.5, "max_shift": 2}}, digits)
    x = trainer.train_dataset.x[:8]
    augmented = trainer._augment(x)
    assert augmented.shape == x.shape and not torch.equal(augmented, x)
    with pytest.raises(ValueError, match="max_shift needs image-shaped data"):
        Trainer(
            {"data": {"name": "wine"}, "augment": {"max_shift": 1}},
            load_dataset(DataConfig(name="wine")),
        )


def test_dataset_checks_its_shape():
    with pytest.raises(ValueError, match="holds 9 values, but each sample has 4"):
        Dataset(np.zeros((2, 4), np.float32), np.zeros(2, np.int64), Task.CLASSIFICATION, (1, 3, 3))
