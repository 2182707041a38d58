"""The Pareto front of an experiment with several objectives, computed from the store: each
trial's final value of each objective, its feasibility under the spec's constraints, and
whether it is on the front (feasible trials first: `hpo.pareto.ranked_front`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from hpo.pareto import feasible, parse_constraint, ranked_front
from hpo.types import Mode, TrialStatus

# Trials whose final values count: they ended without an error.
_RANKED = (TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value)


def objectives_of(spec: Mapping[str, Any]) -> dict[str, Mode]:
    """A stored spec's objectives and their directions (the single metric for one)."""
    objectives = spec.get("objectives") or {spec.get("metric", "val_loss"): spec.get("mode", "min")}
    return {name: Mode(mode) for name, mode in objectives.items()}


def with_front(
    table: pd.DataFrame, spec: Mapping[str, Any], stored: Mapping[str, bool | None] | None = None
) -> pd.DataFrame:
    """`table` (of `Experiment.trials`) with a `feasible` and a `pareto` column.

    A trial is feasible when it ended without an error and its final metrics meet every
    constraint (as the store recorded it, `stored` by trial id, or computed here for a trial
    it has none for); it is on the front when no such trial beats it in every objective.
    """
    stored = stored or {}
    objectives = objectives_of(spec)
    constraints = [parse_constraint(text) for text in spec.get("constraints") or []]
    table = table.copy()
    finals = [f"final.{name}" for name in objectives]
    ranked = table["status"].isin(_RANKED) & table.reindex(columns=finals).notna().all(axis=1)
    metrics = table.filter(like="final.").rename(columns=lambda c: c.removeprefix("final."))
    table["feasible"] = [
        bool(ok)
        and (
            feasible(constraints, row.dropna().to_dict())
            if stored.get(trial_id) is None
            else bool(stored[trial_id])
        )
        for ok, trial_id, (_, row) in zip(
            ranked, table["trial_id"], metrics.iterrows(), strict=True
        )
    ]
    chosen = table[ranked]
    front = ranked_front(
        chosen[finals].to_numpy(dtype=float).tolist(),
        list(objectives.values()),
        chosen["feasible"].tolist(),
    )
    table["pareto"] = False
    table.loc[chosen.index, "pareto"] = front
    return table


def front(table: pd.DataFrame, spec: Mapping[str, Any]) -> pd.DataFrame:
    """The front's trials (of `with_front`), best first by the first objective."""
    objectives = objectives_of(spec)
    first, mode = next(iter(objectives.items()))
    on = table[table["pareto"]]
    return on.sort_values(f"final.{first}", ascending=mode is Mode.MIN)


def best_feasible_first(table: pd.DataFrame, metric: str, mode: Mode, k: int) -> pd.DataFrame:
    """The `k` best trials of `table` (of `with_front`) by their best `metric`, the feasible
    ones before the others; errored trials and those without the metric are left out."""
    column = f"best.{metric}"
    if column not in table:
        return table.iloc[:0]
    ranked = table[(table["status"] != TrialStatus.ERROR.value) & table[column].notna()]
    ranked = ranked.assign(_key=ranked[column] * mode.sign)
    ranked = ranked.sort_values(["feasible", "_key"], ascending=[False, False], kind="stable")
    return ranked.drop(columns="_key").head(k)
