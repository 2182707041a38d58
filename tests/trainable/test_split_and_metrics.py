"""hpo's numpy splits and its metrics are scikit-learn's, draw for draw and digit for digit:
a trial computes them without importing scikit-learn, and experiments split as before
(`test_metrics.py` checks every other metric)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics
from sklearn.model_selection import train_test_split as sklearn_split

from hpo.trainable._split import train_test_split
from hpo.trainable.data import Task
from hpo.trainable.metrics import MetricSet


@pytest.mark.parametrize("n", [10, 37, 150, 1797])
@pytest.mark.parametrize("share", [0.1, 0.2, 0.25, 1 / 3])
@pytest.mark.parametrize("seed", [0, 1, 42])
@pytest.mark.parametrize("stratify", [True, False])
def test_the_split_is_scikit_learns(n, share, seed, stratify):
    rng = np.random.default_rng(n + seed)
    x = rng.normal(size=(n, 3))
    # Unbalanced classes, so that the stratified shares round and break ties.
    y = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    y[:6] = [0, 0, 1, 1, 2, 2]  # every class at least twice
    try:
        expected = sklearn_split(
            x, y, test_size=share, random_state=seed, stratify=y if stratify else None
        )
    except ValueError:  # fewer test samples than classes: refused by both
        with pytest.raises(ValueError, match="needs at least as many samples"):
            train_test_split(x, y, share, seed, stratify=stratify)
        return
    got = train_test_split(x, y, share, seed, stratify=stratify)
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_stratified_split_refuses_a_class_of_one():
    y = np.array([0, 0, 0, 1, 1, 1, 2])
    with pytest.raises(ValueError, match=r"classes \[2\] have 1"):
        train_test_split(np.zeros((7, 1)), y, 0.3, 0, stratify=True)


def _metric_set(names, task, y_true, y_pred):
    """A MetricSet fed (predictions, targets) in two batches."""
    got = MetricSet(names, task, "cpu")
    half = len(y_true) // 2
    for part in (slice(None, half), slice(half, None)):
        got.update(torch.as_tensor(y_pred[part]), torch.as_tensor(y_true[part]))
    return got.compute("val")


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_are_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, size=50)
    y_pred = rng.integers(0, 5, size=50)  # a class never true, and maybe one never predicted
    y_pred[:3] = 4
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0
    )
    logits = np.eye(5)[y_pred]  # the model's outputs, whose largest is the prediction
    assert _metric_set(None, Task.CLASSIFICATION, y_true, logits) == pytest.approx(
        {
            "val_accuracy": metrics.accuracy_score(y_true, y_pred),
            "val_f1": f1,
            "val_precision": precision,
            "val_recall": recall,
        },
        rel=1e-12,
    )


@pytest.mark.parametrize("shape", [(40,), (40, 1), (40, 3)])
def test_regression_metrics_are_scikit_learns(shape):
    rng = np.random.default_rng(len(shape))
    y_true = rng.normal(size=shape)
    y_pred = y_true + rng.normal(scale=0.5, size=shape)
    assert _metric_set(None, Task.REGRESSION, y_true, y_pred) == pytest.approx(
        {
            "val_mse": metrics.mean_squared_error(y_true, y_pred),
            "val_mae": metrics.mean_absolute_error(y_true, y_pred),
            "val_r2": metrics.r2_score(y_true, y_pred),
        },
        rel=1e-12,
    )


def test_r2_of_a_constant_target_is_finite():
    y = np.ones(5)
    assert _metric_set(["r2"], Task.REGRESSION, y, y)["val_r2"] == metrics.r2_score(y, y) == 1.0
    assert _metric_set(["r2"], Task.REGRESSION, y, y + 1)["val_r2"] == metrics.r2_score(y, y + 1)
    assert metrics.r2_score(y, y + 1) == 0.0
