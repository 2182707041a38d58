"""Experiments out of the store: trial tables as CSV or Parquet, and as Optuna studies."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from hpo.errors import UsageError
from hpo.pareto import parse_constraint
from hpo.results._experiment import Experiment


def to_file(experiment: Experiment, path: Path, *, history: bool = False) -> int:
    """Write the trial table (or, with `history`, one row per trial and iteration) to `path`.

    The format follows the extension: `.csv` or `.parquet`. Returns the number of rows.
    """
    table = experiment.history() if history else experiment.trials()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table.to_csv(path, index=False)
    elif suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        raise UsageError(f"cannot tell the format of {str(path)!r}: name it .csv or .parquet")
    return len(table)


def to_optuna(experiment: Experiment, url: Any) -> Any:
    """Write the experiment as an Optuna study at the storage `url` (a new study of the same name).

    Each finished trial keeps its active params with their distributions, its final value of
    the spec's metric, and every epoch's value as an intermediate value, so that
    optuna-dashboard and `optuna.visualization` can show it. Trials still pending or running
    are left out.
    """
    import optuna

    from hpo.search import optuna_distributions, optuna_study, optuna_trial

    if experiment.is_multi_objective:
        return _to_multi_objective_optuna(experiment, url)
    dists = optuna_distributions(experiment.spec.get("space", {}))
    history = experiment.history()
    curves = {
        trial_id: dict(zip(rows["iteration"], rows[experiment.metric], strict=True))
        for trial_id, rows in history.groupby("trial_id")
        if experiment.metric in rows
    }
    trials = [
        optuna_trial(
            row["status"],
            row["value"],
            row["params"],
            dists,
            curves.get(row["trial_id"], {}),
            user_attrs={"hpo_trial_id": row["trial_id"], "hpo_number": row["number"]},
        )
        for row in experiment.store.trial_rows(experiment.row["id"])
    ]
    try:
        study = optuna_study(experiment.mode, storage=url, study_name=experiment.name)
    except optuna.exceptions.DuplicatedStudyError:
        raise UsageError(
            f"{url} already holds a study named {experiment.name!r}; export to another storage"
        ) from None
    study.add_trials([trial for trial in trials if trial is not None])
    return study


def _to_multi_objective_optuna(experiment: Experiment, url: Any) -> Any:
    """`to_optuna` for several objectives: one direction per objective, each finished trial's
    final value of each (a trial missing one is FAIL), and its constraints, which
    optuna-dashboard shows as feasibility. No intermediate values: Optuna keeps them for one
    objective only. A pruned trial is COMPLETE with its last values (its hpo status is in the
    user attribute `hpo_status`), as the search told Optuna, so that Optuna's front is hpo's."""
    import optuna

    from hpo.search import optuna_distributions, optuna_trial, quiet_optuna
    from hpo.search._constrained import constraint_values

    dists = optuna_distributions(experiment.spec.get("space", {}))
    constraints = [parse_constraint(text) for text in experiment.spec.get("constraints") or []]
    rows = experiment.store.trial_rows(
        experiment.row["id"], ["trial_id", "number", "status", "params", "final_metrics"]
    )
    trials = []
    for row in rows:
        final = row["final_metrics"] or {}
        trial = optuna_trial(
            row["status"],
            [final.get(name) for name in experiment.objectives],
            row["params"],
            dists,
            # As the search told Optuna, and as hpo's front counts it: with its last values.
            pruned_as_complete=True,
            user_attrs={
                "hpo_trial_id": row["trial_id"],
                "hpo_number": row["number"],
                "hpo_status": row["status"],
            },
            constraints=constraint_values(constraints, final) if constraints else None,
        )
        if trial is not None:
            trials.append(trial)
    try:
        with quiet_optuna():
            study = optuna.create_study(
                directions=[mode.direction for mode in experiment.objectives.values()],
                storage=url,
                study_name=experiment.name,
            )
    except optuna.exceptions.DuplicatedStudyError:
        raise UsageError(
            f"{url} already holds a study named {experiment.name!r}; export to another storage"
        ) from None
    with warnings.catch_warnings():  # experimental in Optuna, and what the dashboard shows
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(experiment.objectives))
    study.add_trials(trials)
    return study
