"""Experiments out of the store: trial tables as CSV or Parquet, and as Optuna studies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from hpo.errors import UsageError
from hpo.results._experiment import Experiment
from hpo.search import Distribution
from hpo.store import TrialStatus


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


_STATES = {
    TrialStatus.COMPLETED.value: "COMPLETE",
    TrialStatus.PRUNED.value: "PRUNED",
    TrialStatus.ERROR.value: "FAIL",
}


def to_optuna(experiment: Experiment, url: str) -> Any:
    """Write the experiment as an Optuna study at the storage `url` (a new study of the same name).

    Each finished trial keeps its active params with their distributions, its final value of
    the spec's metric, and every epoch's value as an intermediate value, so that
    optuna-dashboard and `optuna.visualization` can show it. Trials still pending or running
    are left out.
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parse = TypeAdapter(Distribution).validate_python
    dists = {key: parse(raw).to_optuna() for key, raw in experiment.spec.get("space", {}).items()}
    dists = {
        key: dist for key, dist in dists.items() if dist is not None
    }  # constants are not searched
    history = experiment.history()
    curves = {
        trial_id: dict(zip(rows["iteration"], rows[experiment.metric], strict=True))
        for trial_id, rows in history.groupby("trial_id")
        if experiment.metric in rows
    }
    trials = []
    for row in experiment.store.trial_rows(experiment.row["id"]):
        state = _STATES.get(row["status"])
        if state is None:
            continue
        if state == "COMPLETE" and row["value"] is None:
            state = "FAIL"  # ran to its end without a usable value of the metric
        params = {key: value for key, value in row["params"].items() if key in dists}
        curve = {int(i): float(v) for i, v in curves.get(row["trial_id"], {}).items() if v == v}
        trials.append(
            create_trial(
                state=TrialState[state],
                value=row["value"] if state == "COMPLETE" else None,
                params=params,
                distributions={key: dists[key] for key in params},
                intermediate_values=curve,
                user_attrs={"hpo_trial_id": row["trial_id"], "hpo_number": row["number"]},
            )
        )
    try:
        study = optuna.create_study(
            storage=url,
            study_name=experiment.name,
            direction="minimize" if experiment.mode == "min" else "maximize",
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise UsageError(
            f"{url} already holds a study named {experiment.name!r}; export to another storage"
        ) from None
    study.add_trials(trials)
    return study
