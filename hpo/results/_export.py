"""Experiments out of the store: trial tables as CSV or Parquet, and as Optuna studies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpo.errors import UsageError
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
