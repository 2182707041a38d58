"""pandas tables of what the store holds: one experiment's trials and history, or all experiments."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pandas as pd

from hpo.errors import MissingStore, UsageError
from hpo.results._evaluation import Evaluation, from_row
from hpo.results._pareto import best_feasible_first, front, objectives_of, with_front
from hpo.store import Store, resolve_url
from hpo.trainable.config import TrainableSections, lean
from hpo.types import Mode, metric_mode

# The columns of a trial's row that `trials()` shows as they are (the JSON ones are spread).
_TRIAL_COLUMNS = (
    "trial_id",
    "number",
    "status",
    "iterations",
    "repeat_of",  # the trial whose config it repeats, untrained (else missing)
    "started_at",
    "ended_at",
    "peak_memory_mb",
    "micro_batches",
    "error_type",
    "error",
    "node",
    "checkpoint_path",
)


_TRIAL_JSON_COLUMNS = ("params", "final_metrics", "best_metrics", "test_metrics")


def _open(store: Store | str | None) -> Store:
    """The store to read (analysis creates none: `MissingStore` where there is none)."""
    return store if isinstance(store, Store) else Store(resolve_url(store), create=False)


class Experiment:
    """One experiment in a store, read as pandas tables."""

    def __init__(self, name: str, store: Store | str | None = None):
        self.store = _open(store)
        self.row = self.store.experiment(name)
        self.name: str = self.row["name"]
        self.metric: str = self.row["metric"]
        self.mode = Mode(self.row["mode"])

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, metric={self.metric!r}, mode={self.mode.value!r})"

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

    def schedule(self) -> pd.DataFrame:
        """Each trial's schedule under PBT: one row per segment, with `number`, `segment`,
        `start_iteration` (its first epoch is the one after), `cloned_from` (the trial whose
        checkpoint of that epoch it went on from; none for segment 0, the trial as it
        started) and `params.*`, the values it trained with from there.

        Trials that PBT never cloned into have only their segment 0; an experiment of
        another scheduler has only those.
        """
        started = self.store.trial_rows(self.row["id"], ["number", "params"])
        rows = [
            {
                "number": r["number"],
                "segment": 0,
                "start_iteration": 0,
                "cloned_from": None,
                **{f"params.{k}": v for k, v in (r["params"] or {}).items()},
            }
            for r in started
        ]
        first = {row["number"]: row for row in rows}
        for r in self.store.segment_rows(self.row["id"]):
            rows.append(
                {
                    **first[r["number"]],  # keys PBT does not mutate keep their first value
                    "segment": r["segment"],
                    "start_iteration": r["start_iteration"],
                    "cloned_from": r["source_number"],
                    **{f"params.{k}": v for k, v in r["params"].items()},
                }
            )
        columns = ["number", "segment", "start_iteration", "cloned_from"]
        table = pd.DataFrame(rows, columns=None if rows else columns)
        table = table.sort_values(["number", "segment"], ignore_index=True)
        table["cloned_from"] = table["cloned_from"].astype("Int64")
        return table

    def trials(self) -> pd.DataFrame:
        """One row per trial: id, status, duration, its peak memory (MiB) and micro-batches,
        `params.*`, `final.*` and `best.*` of each metric, `test.*` where the trial was
        evaluated on the test split, and its error."""
        rows = self.store.trial_rows(self.row["id"], _TRIAL_COLUMNS + _TRIAL_JSON_COLUMNS)
        table = pd.DataFrame(
            [{c: r[c] for c in _TRIAL_COLUMNS} for r in rows], columns=list(_TRIAL_COLUMNS)
        )
        for column in ("started_at", "ended_at"):
            table[column] = pd.to_datetime(table[column])
        table["repeat_of"] = table["repeat_of"].astype("Int64")  # missing where trained
        table.insert(7, "duration_s", (table["ended_at"] - table["started_at"]).dt.total_seconds())
        parts = [table]
        for prefix, column in (
            ("params.", "params"),
            ("final.", "final_metrics"),
            ("best.", "best_metrics"),
            ("test.", "test_metrics"),
        ):
            values = pd.DataFrame([r[column] or {} for r in rows], index=table.index)
            parts.append(values.add_prefix(prefix))
        table = pd.concat(parts, axis=1)
        extra = ["error_type", "error", "node", "checkpoint_path"]
        table = table[[c for c in table.columns if c not in extra] + extra]
        if self.is_multi_objective or self.spec.get("constraints"):
            table = with_front(table, self.spec, self._stored_feasibility())
        return table

    def _stored_feasibility(self) -> dict[str, bool | None]:
        rows = self.store.trial_rows(self.row["id"], ["trial_id", "feasible"])
        return {row["trial_id"]: row["feasible"] for row in rows}

    @property
    def objectives(self) -> dict[str, Mode]:
        """The objectives and their directions (the one metric of a single-objective one)."""
        return objectives_of(self.spec)

    @property
    def is_multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def pareto(self) -> pd.DataFrame:
        """The Pareto front: the non-dominated feasible trials (of `trials()`), best first by
        the first objective; when no trial is feasible, the non-dominated ones of all.
        A single-objective experiment's front is its best trial."""
        table = self.trials()
        if "pareto" not in table:
            table = with_front(table, self.spec, self._stored_feasibility())
        return front(table, self.spec)

    def best(self, k: int = 1) -> pd.DataFrame:
        """The `k` best trials by the best value of the spec's metric (errored trials excluded)."""
        table = self.trials()
        if self.spec.get("constraints"):
            # Feasible trials first, each group by the metric (see `hpo.results._pareto`).
            return best_feasible_first(table, self.metric, self.mode, k)
        best = self.store.best_trials(self.row["id"], self.mode, k)
        rank = {row["trial_id"]: place for place, row in enumerate(best)}
        chosen = table[table["trial_id"].isin(rank)]
        return chosen.iloc[chosen["trial_id"].map(rank).argsort()]

    def best_spec(self) -> dict[str, Any]:
        """The best trial as a spec of its own: its config, nothing searched, one trial."""
        top = self.best(1)
        if top.empty:
            raise UsageError(
                f"experiment {self.name!r} has no trial that finished without an error"
            )
        return self.trial_spec(int(top.iloc[0]["number"]), suffix="best")

    def trial_spec(self, number: int, *, suffix: str | None = None) -> dict[str, Any]:
        """Trial `number` as a spec of its own: its config, nothing searched, one trial (for
        `hpo best NAME --pick N`, a member of the front).

        Raises:
            UsageError: there is no such trial.
        """
        table = self.trials()
        row = table[table["number"] == number]
        if row.empty:
            raise UsageError(
                f"experiment {self.name!r} has no trial {number}; its trials are numbered "
                f"0 to {len(table) - 1}"
            )
        config = self.config(row.iloc[0]["trial_id"])
        if not self.spec.get("trainable"):
            # As the stream stores it now: trials stored before hold every kind's options.
            config = lean(config)
        sections = {
            key: value for key, value in config.items() if key in TrainableSections.model_fields
        }
        return {
            "name": f"{self.name}-{suffix or f'trial{number}'}",
            "metric": self.metric,
            "mode": self.mode.value,
            "seed": config.get("seed", self.row["seed"]),
            **sections,
            "budget": {"num_samples": 1},
        }

    def best_number(self) -> int | None:
        """The best trial's number (None before a trial finished without an error)."""
        top = self.store.best_trials(self.row["id"], self.mode, columns=["number"])
        return int(top[0]["number"]) if top else None

    def evaluations(self) -> list[Evaluation]:
        """Every stored evaluation of a trial's model (the best trial's on the test split at
        the end of the search, and those `hpo evaluate` made), by trial number and split."""
        return [from_row(row) for row in self.store.evaluation_rows(self.row["id"])]

    def evaluation(self, trial: int | None = None, split: str = "test") -> Evaluation:
        """A trial's evaluation on a split, as DataFrames: `per_class` (precision, recall, f1
        and support by class name), `confusion` (true by predicted class), or for regression
        `residuals` and `points` (true against predicted); `metrics` of the split.

        Args:
            trial: the trial's number (default: the best trial).
            split: `test` (default) or `val`.

        Raises:
            UsageError: no such evaluation is stored; the message says how to make one.
        """
        number = self.best_number() if trial is None else int(trial)
        which = "the best trial" if trial is None else f"trial {number}"
        if number is None:
            raise UsageError(f"experiment {self.name!r} has no trial that finished without an error")
        for found in self.evaluations():
            if found.trial == number and found.split == split:
                return found
        option = "" if trial is None else f" --trial {number}"
        raise UsageError(
            f"{which} of experiment {self.name!r} has no stored evaluation on the {split} split"
            f"; make one with: hpo evaluate {self.name}{option} --split {split} (it needs the "
            "trial's checkpoint; a search evaluates its best trial on the test split by itself "
            "where data.test_fraction is above 0)"
        )

    def report(self, path: str | Path) -> Path:
        """Write a self-contained HTML report of the search (see `hpo.results._report`).

        Args:
            path: the HTML file to write.

        Returns:
            The path written.

        Raises:
            UsageError: the file cannot be written there.
        """
        from hpo.results._report import (
            write_html,  # matplotlib loads only when a report is asked for
        )

        return write_html(self, path)

    def trial(self, number: int) -> dict[str, Any]:
        """One trial whole, by number: every column of the store (its error's traceback too),
        and `history`, its metrics by iteration."""
        rows = [r for r in self.store.trial_rows(self.row["id"]) if r["number"] == number]
        if not rows:
            raise UsageError(
                f"experiment {self.name!r} has no trial {number} "
                f"(its trials are numbered from 0; `hpo show {self.name}` lists them)"
            )
        history = self.history()
        history = history[history["trial_id"] == rows[0]["trial_id"]]
        return {**rows[0], "history": history.dropna(axis=1, how="all").reset_index(drop=True)}

    def config(self, trial: str | int) -> dict[str, Any]:
        """The full config of a trial, by trial id or number."""
        number = int(trial) if not isinstance(trial, str) else trial  # numpy ints from tables too
        config = self.store.trial_config(self.row["id"], number)
        if config is None:
            raise UsageError(f"experiment {self.name!r} has no trial {trial!r}")
        return config


def load(name: str, store: Store | str | None = None) -> Experiment:
    """An experiment from the store (by default `--store`/`$HPO_STORE`/`hpo-results/hpo.db`)."""
    return Experiment(name, store)


def experiments(store: Store | str | None = None) -> pd.DataFrame:
    """One row per experiment in the store, with its trial counts and best value (none where
    there is no store yet)."""
    try:
        rows = _open(store).experiment_rows()
    except MissingStore:
        rows = []
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["best_value"] = table["min_value"].where(
        table["mode"] == Mode.MIN.value, table["max_value"]
    )
    return table.drop(columns=["min_value", "max_value"])


def compare(names: list[str], store: Store | str | None = None) -> pd.DataFrame:
    """The trial tables of several experiments, stacked, with an `experiment` column first."""
    store = _open(store)
    experiments = [load(name, store) for name in names]
    tables = [e.trials().assign(experiment=e.name, objectives=_described(e)) for e in experiments]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if "pareto" in table:
        # A single-objective experiment's front is its best trial (`Experiment.pareto`).
        fronts = [set(e.pareto()["trial_id"]) for e in experiments]
        on = {(e.name, t) for e, front in zip(experiments, fronts, strict=True) for t in front}
        table["pareto"] = [
            (e, t) in on for e, t in zip(table["experiment"], table["trial_id"], strict=True)
        ]
        table["feasible"] = table["feasible"].fillna(table["status"] != "ERROR").astype(bool)
    first = ["experiment", "objectives"]
    return table[[*first, *[c for c in table.columns if c not in first]]]


def _described(experiment: Experiment) -> str:
    """An experiment's objectives as text: `max val_accuracy, min n_params`."""
    return ", ".join(f"{mode} {name}" for name, mode in experiment.objectives.items())


def select(
    experiment: Experiment,
    *,
    sort_by: str | None = None,
    top: int | None = None,
    statuses: list[str] = (),
) -> pd.DataFrame:
    """An experiment's trial table filtered by status, ordered and cut to the first `top`.

    Args:
        sort_by: a column of `trials()`; metrics sort best first (their direction from the spec
            or their name), other columns ascending; a leading `-` reverses. Default: the
            best value of the spec's metric.
    """
    table = experiment.trials()
    if statuses:
        table = table[table["status"].isin(statuses)]
    column = (sort_by or f"best.{experiment.metric}").removeprefix("-")
    if column not in table.columns:
        if sort_by:
            close = difflib.get_close_matches(column, list(table.columns), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(
                f"no column {column!r} to sort by{hint} Columns: {', '.join(table.columns)}"
            )
    else:
        metric = (
            column.split(".", 1)[-1] if column.startswith(("best.", "final.", "test.")) else None
        )
        mode = metric_mode(metric, experiment.metric, experiment.mode) if metric else None
        ascending = mode is not Mode.MAX
        if sort_by and sort_by.startswith("-"):
            ascending = not ascending
        table = table.sort_values(column, ascending=ascending, na_position="last", kind="stable")
    return table.head(top) if top else table
