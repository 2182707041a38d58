"""Validation metrics from predictions, with scikit-learn's definitions, in numpy alone.

A trial computes them every epoch; importing scikit-learn there for these few lines cost
every fresh worker about a second. `tests/trainable/test_split_and_metrics.py` checks them against
scikit-learn.
"""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, prefix: str) -> dict[str, float]:
    """Accuracy and macro-averaged F1, precision and recall (every class weighs the same).

    The classes are those in `y_true` or `y_pred`; a class never predicted has precision 0
    (scikit-learn's `zero_division=0`), and so on.
    """
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    labels, encoded = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    true, pred = encoded[: len(y_true)], encoded[len(y_true) :]
    n = len(labels)
    tp = np.bincount(true[true == pred], minlength=n).astype(float)
    true_count = np.bincount(true, minlength=n).astype(float)
    pred_count = np.bincount(pred, minlength=n).astype(float)
    precision = _divide(tp, pred_count)
    recall = _divide(tp, true_count)
    f1 = _divide(2 * tp, true_count + pred_count)
    return {
        f"{prefix}_accuracy": float(np.mean(y_true == y_pred)),
        f"{prefix}_f1": float(f1.mean()),
        f"{prefix}_precision": float(precision.mean()),
        f"{prefix}_recall": float(recall.mean()),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, prefix: str) -> dict[str, float]:
    """Mean squared and absolute errors (in the target's units) and the R² score (of several
    targets, their mean)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred.reshape(len(y_pred), -1)
    error = y_true - y_pred
    ss_res = (error**2).sum(axis=0)
    ss_tot = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    # A constant target: 1 if predicted exactly, else 0 (scikit-learn's `force_finite`).
    r2 = np.where(
        ss_tot == 0, np.where(ss_res == 0, 1.0, 0.0), 1 - ss_res / np.where(ss_tot == 0, 1, ss_tot)
    )
    return {
        f"{prefix}_mse": float(np.mean(error**2)),
        f"{prefix}_mae": float(np.mean(np.abs(error))),
        f"{prefix}_r2": float(r2.mean()),
    }


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
