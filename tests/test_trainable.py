"""The training loops, run without Ray."""

import numpy as np
import pytest

from hpo.trainable import TrainableConfig, load_dataset
from hpo.trainable.config import FINAL_KEY, DataConfig, reported_metrics
from hpo.trainable.data import split
from hpo.trainable.loop import fit


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(name="digits"))


def test_split_is_stratified_and_standardised_on_train_only(digits):
    splits = split(digits, 0.2, seed=0)
    assert len(splits.x_val) == pytest.approx(0.2 * len(digits.x), abs=1)
    # every class keeps its share in both parts
    train_share = np.bincount(splits.y_train) / len(splits.y_train)
    val_share = np.bincount(splits.y_val) / len(splits.y_val)
    assert np.abs(train_share - val_share).max() < 0.01
    # standardised with train statistics: train columns are centred, validation ones only roughly
    varying = splits.x_train.std(axis=0) > 0
    assert np.abs(splits.x_train[:, varying].mean(axis=0)).max() < 1e-4
    assert np.abs(splits.x_val[:, varying].mean(axis=0)).max() > 1e-4


def test_fit_reports_every_metric_each_epoch_and_learns(digits):
    epochs = list(fit({"training": {"epochs": 8}, "optimizer": {"lr": 3e-3}}, digits))
    assert [m["epoch"] for m in epochs] == list(range(1, 9))
    assert set(reported_metrics(DataConfig(name="digits"))) <= set(epochs[-1])
    assert epochs[-1]["val_accuracy"] > 0.93
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert [m[FINAL_KEY] for m in epochs] == [False] * 7 + [True]


def test_same_config_trains_the_same(digits):
    config = {"training": {"epochs": 2}, "model": {"dropout": 0.2}}
    assert list(fit(config, digits))[-1]["val_loss"] == list(fit(config, digits))[-1]["val_loss"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizers(digits, optimizer):
    last = list(
        fit(
            {
                "training": {"epochs": 3},
                "optimizer": {
                    "name": optimizer,
                    "lr": 0.05,
                    "momentum": 0.9 if optimizer == "sgd" else 0,
                },
            },
            digits,
        )
    )[-1]
    assert last["val_accuracy"] > 0.8


def test_regression_dataset():
    last = list(
        fit(
            {"data": {"name": "diabetes"}, "training": {"epochs": 2}},
            load_dataset(DataConfig(name="diabetes")),
        )
    )[-1]
    assert "val_accuracy" not in last
    assert last["val_loss"] > 0


def test_diverging_loss_fails_the_trial(digits):
    config = {"training": {"epochs": 5}, "optimizer": {"name": "sgd", "lr": 1e12}}
    with pytest.raises(FloatingPointError, match="training loss became"):
        list(fit(config, digits))


def test_invalid_config_is_rejected(digits):
    with pytest.raises(ValueError, match="hidden_sizes"):
        list(fit({"model": {"hidden_sizes": [3]}}, digits))
    assert TrainableConfig().model.name == "mlp"
