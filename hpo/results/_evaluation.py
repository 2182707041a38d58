"""A trial's stored evaluation (`Store.evaluation_rows`) as pandas tables.

The store keeps the report as plain JSON (see `hpo.trainable.diagnostics`); this reads it into
the tables a user works with: the per-class report, the confusion matrix with the class names
on both axes, the residuals' summary and the predicted-against-true points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Evaluation:
    """One trial's model evaluated on one split.

    Attributes:
        trial: the trial's number.
        trial_id: its id.
        split: `test` or `val`.
        kind: `classification` or `regression`.
        metrics: the split's metrics (`test_loss`, `test_accuracy`, ...).
        per_class: classification: one row per class (the index: its name) with precision,
            recall, f1 and support; then the rows of the averages (`macro avg`, ...).
            Regression: empty.
        confusion: classification: counts, rows the true class (`true`), columns the
            predicted one (`predicted`); empty for multi-label models and regression.
        residuals: regression: predicted minus true, summarised (count, mean, std, min,
            quartiles, max, mae, rmse). Classification: empty.
        points: regression: a sample of `true` and `predicted` values. Classification: empty.
        report: the report as stored.
    """

    trial: int
    trial_id: str
    split: str
    kind: str
    metrics: pd.Series
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    residuals: pd.Series
    points: pd.DataFrame
    report: dict[str, Any]


def from_row(row: dict[str, Any]) -> Evaluation:
    """The `Evaluation` of one row of `Store.evaluation_rows`."""
    report = row["report"] or {}
    kind = report.get("kind", "")
    per_class = pd.DataFrame(columns=["precision", "recall", "f1", "support"])
    confusion = pd.DataFrame()
    residuals = pd.Series(dtype=float)
    points = pd.DataFrame(columns=["true", "predicted"])
    if kind == "classification":
        per_class = pd.DataFrame(report["per_class"]).set_index("class")
        averages = pd.DataFrame.from_dict(report.get("averages") or {}, orient="index")
        if not averages.empty:
            per_class = pd.concat([per_class, averages])
        per_class["support"] = per_class["support"].astype(int)
        per_class.index.name = "class"
        if report.get("confusion") is not None:
            names = report["classes"]
            confusion = pd.DataFrame(
                report["confusion"],
                index=pd.Index(names, name="true"),
                columns=pd.Index(names, name="predicted"),
            )
    elif kind == "regression":
        residuals = pd.Series(report["residuals"], name="residual", dtype=float)
        points = pd.DataFrame(report["points"])
    return Evaluation(
        trial=int(row["number"]),
        trial_id=row["trial_id"],
        split=row["split"],
        kind=kind,
        metrics=pd.Series(row["metrics"], dtype=float),
        per_class=per_class,
        confusion=confusion,
        residuals=residuals,
        points=points,
        report=report,
    )
