"""The CLI's views of a search of several objectives: the Pareto front as a table (the end
of a run, `hpo best NAME`) and its members marked in `hpo show`."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

# The mark of a front member in `hpo show`.
FRONT_MARK = "*"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return "" if value is None else str(value)


def front_table(experiment: Any, front: Any | None = None) -> Table:
    """The front's trials (`experiment.pareto()`): each objective's final value, whether it
    is feasible, and its searched params."""
    front = experiment.pareto() if front is None else front
    params = [c for c in front.columns if c.startswith("params.")]
    view = Table()
    view.add_column("#", justify="right")
    for name, mode in experiment.objectives.items():
        view.add_column(f"{name} ({mode})", justify="right")
    constrained = bool(experiment.spec.get("constraints"))
    if constrained:
        view.add_column("feasible")
    for column in params:
        view.add_column(column.removeprefix("params."), justify="right")
    for _, row in front.iterrows():
        view.add_row(
            str(row["number"]),
            *(_fmt(row.get(f"final.{name}")) for name in experiment.objectives),
            *(["yes" if row["feasible"] else "no"] if constrained else []),
            *(_fmt(row[c]) for c in params),
        )
    return view


def print_front(console: Any, experiment: Any, store_flag: str = "") -> None:
    """The front's size and its members, and how to run one of them alone."""
    front = experiment.pareto()
    objectives = ", ".join(f"{mode} {name}" for name, mode in experiment.objectives.items())
    trials = experiment.trials()
    feasible = int(trials["feasible"].sum()) if "feasible" in trials else len(trials)
    constraints = experiment.spec.get("constraints") or []
    met = (
        f"; {feasible} of {len(trials)} trials meet {' and '.join(constraints)}"
        if constraints
        else ""
    )
    console.print(f"Pareto front ({objectives}): {len(front)} trials{met}", highlight=False)
    console.print(front_table(experiment, front))
    if not front.empty:
        console.print(
            f"Run one alone: hpo best {experiment.name}{store_flag} --pick "
            f"{front.iloc[0]['number']} > trial.yaml && hpo run trial.yaml",
            highlight=False,
        )


def front_marks(trials: Any) -> list[str]:
    """`FRONT_MARK` for each trial of `trials` (of `Experiment.trials`) on the front."""
    if "pareto" not in trials:
        return [""] * len(trials)
    return [FRONT_MARK if on else "" for on in trials["pareto"]]
