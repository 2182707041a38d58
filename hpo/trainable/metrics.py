"""Validation metrics from predictions, with scikit-learn's definitions."""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, prefix: str) -> dict[str, float]:
    """Accuracy and macro-averaged F1, precision and recall (every class weighs the same)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    # zero_division=0: a class never predicted scores 0 instead of warning.
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0
    )
    return {
        f"{prefix}_accuracy": float(accuracy_score(y_true, y_pred)),
        f"{prefix}_f1": float(f1),
        f"{prefix}_precision": float(precision),
        f"{prefix}_recall": float(recall),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, prefix: str) -> dict[str, float]:
    """Mean squared and absolute errors (in the target's units) and the R² score."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        f"{prefix}_mse": float(mean_squared_error(y_true, y_pred)),
        f"{prefix}_mae": float(mean_absolute_error(y_true, y_pred)),
        f"{prefix}_r2": float(r2_score(y_true, y_pred)),
    }
