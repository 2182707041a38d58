"""The report's figures of a search of several objectives: the front as a scatter of two
objectives (pairwise panels for three or more), with dominated and infeasible trials drawn
apart, and parameter importance per objective (Optuna's, with each objective as its target).
"""

from __future__ import annotations

import itertools
import warnings
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.figure import Figure

from hpo.types import Mode

if TYPE_CHECKING:
    from hpo.results._experiment import Experiment

_FRONT, _DOMINATED, _INFEASIBLE = "#1f77b4", "#b0b0b0", "#d62728"


def pareto_figures(experiment: Experiment, trials: pd.DataFrame) -> dict[str, Figure | None]:
    """`front` and `importance-<objective>` figures, by name, in page order."""
    made: dict[str, Figure | None] = {"front": front_figure(experiment, trials)}
    for name, scores in importances(experiment).items():
        made[f"importance-{name}"] = _importance_figure(name, scores)
    return made


def front_figure(experiment: Experiment, trials: pd.DataFrame) -> Figure | None:
    """The front against the other trials, one panel per pair of objectives."""
    names = list(experiment.objectives)
    columns = [f"final.{n}" for n in names]
    if "pareto" not in trials or not set(columns) <= set(trials):
        return None
    drawn = trials.dropna(subset=columns)
    if drawn.empty:
        return None
    pairs = list(itertools.combinations(range(len(names)), 2))
    fig = Figure(figsize=(5.5 * min(len(pairs), 3), 4.2 * ((len(pairs) + 2) // 3)))
    axes = fig.subplots((len(pairs) + 2) // 3, min(len(pairs), 3), squeeze=False).ravel()
    front = drawn[drawn["pareto"]]
    groups = (
        ("dominated", drawn[~drawn["pareto"] & drawn["feasible"]], _DOMINATED, "o"),
        ("infeasible", drawn[~drawn["feasible"]], _INFEASIBLE, "x"),
        ("Pareto front", front, _FRONT, "o"),
    )
    for ax, (i, j) in zip(axes, pairs, strict=False):
        x, y = columns[i], columns[j]
        for label, group, color, marker in groups:
            if not group.empty:
                ax.scatter(group[x], group[y], s=28, c=color, marker=marker, label=label)
        if len(names) == 2 and len(front) > 1:  # the trade-off itself, as a step line
            line = front.sort_values(x)
            ax.step(line[x], line[y], where="post", color=_FRONT, alpha=0.5, linewidth=1)
        for _, row in front.iterrows():
            ax.annotate(
                str(row["number"]),
                (row[x], row[y]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        modes = experiment.objectives
        ax.set_xlabel(f"{names[i]} ({_better(modes[names[i]])})")
        ax.set_ylabel(f"{names[j]} ({_better(modes[names[j]])})")
    for ax in axes[len(pairs) :]:
        ax.set_visible(False)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(f"Pareto front: {len(front)} of {len(drawn)} trials", x=0.01, ha="left")
    fig.tight_layout()
    return fig


def _better(mode: Mode) -> str:
    return "higher is better" if mode is Mode.MAX else "lower is better"


def importances(experiment: Experiment) -> dict[str, dict[str, float]]:
    """Optuna's parameter importances for each objective (its final value as the target), on
    the study `hpo export --optuna` writes; objectives it cannot assess are left out."""
    import optuna

    from hpo.results._export import to_optuna

    study = to_optuna(experiment, optuna.storages.InMemoryStorage())
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2 or not any(t.params for t in complete):
        return {}
    found = {}
    for i, name in enumerate(experiment.objectives):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # experimental-feature and few-trials notices
                found[name] = optuna.importance.get_param_importances(
                    study, target=lambda t, i=i: t.values[i]
                )
        except (ValueError, RuntimeError):
            continue  # e.g. every trial has the same value of it
    return found


def _importance_figure(name: str, scores: dict[str, Any]) -> Figure | None:
    if not scores:
        return None
    names = list(scores)[::-1]
    fig = Figure(figsize=(6, 0.4 * len(names) + 1.2))
    ax = fig.subplots()
    ax.barh(names, [scores[n] for n in names], color=_FRONT)
    ax.set_xlabel("importance (Optuna, sums to 1)")
    ax.set_title(f"which parameters mattered for {name}", loc="left")
    fig.tight_layout()
    return fig
