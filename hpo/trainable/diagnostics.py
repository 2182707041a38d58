"""The best model's evaluation as the PyTorch guide reports it, beyond its summary metrics.

For a classifier: the confusion matrix and the per-class precision, recall, F1 and support
(what scikit-learn's `classification_report` holds, computed by scikit-learn). For a
regression model: a summary of the residuals and a sample of (true, predicted) pairs for a
predicted-against-true plot. The report is plain JSON (lists, numbers, strings), so the store
keeps it as it is and the analysis reads it without torch.

`Predictions` gathers what an evaluation pass saw, batch by batch, on the CPU; `diagnose`
turns it into the report. scikit-learn is imported only here, once per evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hpo.trainable.data import Task

__all__ = ["MAX_POINTS", "Predictions", "class_names_of", "diagnose"]

# Points of the predicted-against-true plot kept in the store: enough to see the shape of a
# model's errors, few enough that a test split of a million rows stays a small JSON value.
MAX_POINTS = 2000


class Predictions:
    """A model's decisions and the targets of one evaluation pass.

    Classifiers keep predicted labels (the argmax of multi-class logits, a logit above 0 for a
    binary or multi-label model), regression models their predictions, in the target's units.

    Args:
        task: classification or regression.
    """

    def __init__(self, task: Task) -> None:
        self.task = task
        self._predicted: list[np.ndarray] = []
        self._true: list[np.ndarray] = []
        self.multilabel = False

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch of outputs (logits for classifiers) and their targets."""
        outputs, targets = outputs.detach().float(), targets.detach()
        if self.task is Task.REGRESSION:
            predicted = outputs
        elif outputs.ndim == 1 or outputs.shape[1] == 1:  # one logit: binary
            predicted = (outputs.reshape(len(outputs)) > 0).long()
            targets = targets.reshape(len(targets)).long()
        elif targets.ndim == 2 and targets.shape == outputs.shape:  # 0/1 rows: multi-label
            self.multilabel = True
            predicted = (outputs > 0).long()
            targets = targets.long()
        else:
            predicted = outputs.argmax(dim=1)
        self._predicted.append(predicted.cpu().numpy())
        self._true.append(targets.cpu().numpy())

    @property
    def predicted(self) -> np.ndarray:
        return np.concatenate(self._predicted) if self._predicted else np.zeros(0)

    @property
    def true(self) -> np.ndarray:
        return np.concatenate(self._true) if self._true else np.zeros(0)


def class_names_of(
    declared: Sequence[str] | None, datasets: Sequence[Any], num_classes: int | None
) -> list[str]:
    """The names of a classifier's classes 0..k-1.

    The spec's `data.class_names` first; else the first dataset's `classes` attribute (an
    image folder's subfolders or labels, torchvision's datasets), looked for through wrappers
    (`Subset`, transforms) by their `dataset` attribute; else the class numbers.

    Raises:
        ValueError: the names found are not one per class.
    """
    names: list[str] | None = [str(name) for name in declared] if declared else None
    where = "data.class_names"
    for dataset in datasets:
        if names is not None:
            break
        seen = 0
        while dataset is not None and seen < 8:  # wrappers of wrappers, but no cycle
            classes = getattr(dataset, "classes", None)
            if isinstance(classes, Sequence) and not isinstance(classes, str) and classes:
                names, where = [str(name) for name in classes], "the dataset's `classes`"
                break
            dataset, seen = getattr(dataset, "dataset", None), seen + 1
    if names is None:
        return [str(number) for number in range(num_classes or 0)]
    if num_classes is not None and len(names) != num_classes:
        raise ValueError(
            f"{where} names {len(names)} classes, but the model has {num_classes} "
            f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}); give one name per "
            "class, in the order of their labels 0..k-1"
        )
    return names


def diagnose(predictions: Predictions, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The evaluation report of one pass, as plain JSON.

    Classification: `{"kind": "classification", "classes": [...], "confusion": [[...]] (rows
    the true class, columns the predicted one; None for multi-label), "per_class": [{"class",
    "precision", "recall", "f1", "support"}, ...], "averages": {"macro avg": {...},
    "weighted avg": {...}}, "accuracy": ...}`.

    Regression: `{"kind": "regression", "residuals": {"count", "mean", "std", "min", "q25",
    "median", "q75", "max", "mae", "rmse"}, "points": {"true": [...], "predicted": [...]}}`,
    residuals being predicted minus true, and points an evenly spaced sample of at most
    `MAX_POINTS`.

    Raises:
        ValueError: no sample was seen.
    """
    y_true, y_pred = predictions.true, predictions.predicted
    if not len(y_true):
        raise ValueError("the evaluation saw no sample: the split is empty")
    if predictions.task is Task.REGRESSION:
        return _regression(y_true.astype(float), y_pred.astype(float))
    return _classification(y_true, y_pred, predictions.multilabel, class_names)


def _classification(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    multilabel: bool,
    class_names: Sequence[str] | None,
) -> dict[str, Any]:
    from sklearn.metrics import classification_report, confusion_matrix

    found = y_true.shape[1] if multilabel else int(max(y_true.max(), y_pred.max())) + 1
    names = list(class_names) if class_names else [str(n) for n in range(found)]
    if len(names) < found:  # labels beyond the names given: named by their number
        names += [str(n) for n in range(len(names), found)]
    labels = list(range(len(names)))
    report = classification_report(
        y_true, y_pred, labels=labels, target_names=names, output_dict=True, zero_division=0
    )
    per_class = [
        {
            "class": name,
            "precision": float(report[name]["precision"]),
            "recall": float(report[name]["recall"]),
            "f1": float(report[name]["f1-score"]),
            "support": int(report[name]["support"]),
        }
        for name in names
    ]
    averages = {
        key: {
            "precision": float(report[key]["precision"]),
            "recall": float(report[key]["recall"]),
            "f1": float(report[key]["f1-score"]),
            "support": int(report[key]["support"]),
        }
        for key in ("micro avg", "macro avg", "weighted avg", "samples avg")
        if key in report
    }
    confusion = None if multilabel else confusion_matrix(y_true, y_pred, labels=labels).tolist()
    accuracy = float(
        (y_true == y_pred).all(axis=1).mean() if multilabel else (y_true == y_pred).mean()
    )
    return {
        "kind": "classification",
        "classes": names,
        "confusion": confusion,
        "per_class": per_class,
        "averages": averages,
        "accuracy": accuracy,
    }


def _regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    # Several targets per sample: one residual per target value, pooled.
    y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
    residuals = y_pred - y_true
    q25, median, q75 = np.percentile(residuals, [25, 50, 75])
    summary = {
        "count": len(residuals),
        "mean": float(residuals.mean()),
        "std": float(residuals.std(ddof=1)) if len(residuals) > 1 else 0.0,
        "min": float(residuals.min()),
        "q25": float(q25),
        "median": float(median),
        "q75": float(q75),
        "max": float(residuals.max()),
        "mae": float(np.abs(residuals).mean()),
        "rmse": float(np.sqrt((residuals**2).mean())),
    }
    keep = np.unique(np.linspace(0, len(y_true) - 1, min(MAX_POINTS, len(y_true))).astype(int))
    return {
        "kind": "regression",
        "residuals": summary,
        "points": {"true": y_true[keep].tolist(), "predicted": y_pred[keep].tolist()},
    }
