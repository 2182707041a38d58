"""pandas tables of what the store holds: one experiment's trials and history, or all experiments."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hpo.errors import UsageError
from hpo.store import Store, TrialStatus, resolve_url

# Which way is better for metrics other than the spec's own, told by their names.
_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "rmse")
_HIGHER_IS_BETTER = ("acc", "f1", "precision", "recall", "r2", "auc")


def metric_mode(name: str, metric: str, mode: str) -> str | None:
    """'min' or 'max' for a metric, or None when its name does not tell."""
    if name == metric:
        return mode
    lowered = name.lower()
    if any(part in lowered for part in _LOWER_IS_BETTER):
        return "min"
    if any(part in lowered for part in _HIGHER_IS_BETTER):
        return "max"
    return None


def _open(store: Store | str | None) -> Store:
    return store if isinstance(store, Store) else Store(resolve_url(store))


class Experiment:
    """One experiment in a store, read as pandas tables."""

    def __init__(self, name: str, store: Store | str | None = None):
        self.store = _open(store)
        self.row = self.store.experiment(name)
        self.name: str = self.row["name"]
        self.metric: str = self.row["metric"]
        self.mode: str = self.row["mode"]

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, metric={self.metric!r}, mode={self.mode!r})"

    @property
    def spec(self) -> dict[str, Any]:
        """The resolved spec the experiment ran with."""
        return self.row["spec"]

    @property
    def status(self) -> str:
        return self.store.experiment(self.name)["status"]

    def history(self) -> pd.DataFrame:
        """One row per trial and iteration, one column per reported metric."""
        rows = self.store.result_rows(self.row["id"])
        if not rows:
            return pd.DataFrame(columns=["trial_id", "iteration", "reported_at"])
        table = pd.DataFrame(rows)
        metrics = pd.json_normalize(table.pop("metrics").tolist())
        return pd.concat([table, metrics], axis=1)

    def trials(self) -> pd.DataFrame:
        """One row per trial: id, status, duration, `params.*`, `final.*` and `best.*` of each metric."""
        rows = self.store.trial_rows(self.row["id"])
        columns = ["trial_id", "number", "status", "iterations", "started_at", "ended_at"]
        table = pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=columns)
        for column in ("started_at", "ended_at"):
            table[column] = pd.to_datetime(table[column])
        table["duration_s"] = (table["ended_at"] - table["started_at"]).dt.total_seconds()
        params = pd.DataFrame([r["params"] for r in rows], index=table.index)
        table = pd.concat([table, params.add_prefix("params.")], axis=1)

        history = self.history()
        metrics = [
            c for c in history.columns if c not in ("trial_id", "iteration", "reported_at", "epoch")
        ]
        if metrics:
            by_trial = history.sort_values("iteration").groupby("trial_id")
            parts = [by_trial[metrics].last().add_prefix("final.")]
            for name in metrics:
                mode = metric_mode(name, self.metric, self.mode)
                if mode is not None:
                    best = by_trial[name].min() if mode == "min" else by_trial[name].max()
                    parts.append(best.rename(f"best.{name}"))
            table = table.join(pd.concat(parts, axis=1), on="trial_id")
        table["error"] = [r["error"] for r in rows]
        return table

    def best(self, k: int = 1) -> pd.DataFrame:
        """The `k` best trials by the best value of the spec's metric (errored trials excluded)."""
        table = self.trials()
        column = f"best.{self.metric}"
        if column not in table:
            return table.iloc[0:0]
        ok = table[table["status"] != TrialStatus.ERROR.value].dropna(subset=[column])
        return ok.sort_values(column, ascending=self.mode == "min", kind="stable").head(k)

    def config(self, trial: str | int) -> dict[str, Any]:
        """The full config of a trial, by trial id or number."""
        for row in self.store.trial_rows(self.row["id"]):
            if trial in (row["trial_id"], row["number"]):
                return row["config"]
        raise UsageError(f"experiment {self.name!r} has no trial {trial!r}")


def load(name: str, store: Store | str | None = None) -> Experiment:
    """An experiment from the store (by default `--store`/`$HPO_STORE`/`hpo-results/hpo.db`)."""
    return Experiment(name, store)


def experiments(store: Store | str | None = None) -> pd.DataFrame:
    """One row per experiment in the store, with its trial counts and best value."""
    rows = _open(store).experiment_rows()
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["best_value"] = table["min_value"].where(table["mode"] == "min", table["max_value"])
    return table.drop(columns=["min_value", "max_value"])
