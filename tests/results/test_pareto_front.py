"""The front of an experiment of several objectives, from the store: `pareto()`, the
`pareto` and `feasible` columns, `compare`, the Optuna export, and the CLI's views."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner

from hpo.cli._app import cli
from hpo.results import Experiment, compare, to_optuna
from hpo.spec import load_spec
from hpo.store import Store, now
from tests.conftest import tiny_spec

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store-b256439.db"

# (val_accuracy, n_params, status): 0, 2 and 3 are on the front; 4 dominates all but is
# infeasible (n_params > 5000); 1 is dominated by 0; 5 errored.
TRIALS = [
    (0.95, 2000, "COMPLETED"),
    (0.94, 3000, "COMPLETED"),
    (0.97, 4000, "PRUNED"),
    (0.80, 500, "COMPLETED"),
    (0.99, 9000, "COMPLETED"),
    (None, None, "ERROR"),
]


def _spec(**changes) -> dict:
    changes.setdefault("objectives", {"val_accuracy": "max", "n_params": "min"})
    data = tiny_spec(
        constraints=["n_params <= 5000"],
        searcher={"name": "optuna", "sampler": "nsga2", "population_size": 4},
        **changes,
    )
    del data["metric"], data["mode"]
    return data


def _store(url: str, name: str, data: dict, rows: list) -> None:
    spec = load_spec(data)
    store = Store(url)
    experiment_id, _ = store.create_experiment(
        name,
        {**spec.model_dump(mode="json"), "name": name, "num_trials": len(rows)},
        storage_path="/tmp",
    )
    constraints = spec.parsed_constraints()
    trial_rows = []
    for number, (accuracy, n_params, status) in enumerate(rows):
        final = {} if accuracy is None else {"val_accuracy": accuracy, "n_params": n_params}
        trial_rows.append(
            {
                "experiment_id": experiment_id,
                "trial_id": f"t{number}",
                "number": number,
                "status": status,
                "params": {"optimizer.lr": 0.01, "model.hidden_size": 8 + number},
                "config": _config(spec, 8 + number),
                "started_at": now(),
                "ended_at": now(),
                "final_metrics": final,
                "best_metrics": final,
                "value": accuracy,
                **({"feasible": n_params <= 5000} if constraints and final else {}),
            }
        )
    store.write(trial_rows, [])


def _config(spec, hidden_size: int) -> dict:
    config = copy.deepcopy(spec.base_config())
    config["model"]["hidden_size"] = hidden_size
    return config


@pytest.fixture
def url(workdir: Path) -> str:
    url = f"sqlite:///{workdir / 'hpo.db'}"
    _store(url, "mo", _spec(), TRIALS)
    return url


def test_the_front_is_the_non_dominated_feasible_trials(url):
    experiment = Experiment("mo", url)
    assert experiment.is_multi_objective
    trials = experiment.trials().set_index("number")
    assert trials["feasible"].tolist() == [True, True, True, True, False, False]
    assert trials["pareto"].tolist() == [True, False, True, True, False, False]
    front = experiment.pareto()
    assert front["number"].tolist() == [2, 0, 3]  # best first by the first objective
    # `best` prefers feasible trials: trial 4 has the best accuracy, but is infeasible
    assert experiment.best(2)["number"].tolist() == [2, 0]


def test_compare_stacks_experiments_of_different_objectives(url):
    _store(url, "single", tiny_spec(), [(0.9, 100, "COMPLETED"), (0.95, 200, "COMPLETED")])
    table = compare(["mo", "single"], url)
    assert table.groupby("experiment")["objectives"].first().to_dict() == {
        "mo": "max val_accuracy, min n_params",
        "single": "max val_accuracy",
    }
    on = table[table["pareto"]]
    assert sorted(zip(on["experiment"], on["number"], strict=True)) == [
        ("mo", 0),
        ("mo", 2),
        ("mo", 3),
        ("single", 1),
    ]
    # a single-objective experiment's own table is as before: no front columns
    assert "pareto" not in Experiment("single", url).trials()


def test_the_optuna_export_is_a_multi_objective_study(url, workdir):
    target = f"sqlite:///{workdir / 'optuna.db'}"
    to_optuna(Experiment("mo", url), target)
    study = optuna.load_study(study_name="mo", storage=target)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_accuracy", "n_params"]
    # Optuna's own front, feasible trials only, is hpo's
    assert sorted(t.user_attrs["hpo_number"] for t in study.best_trials) == [0, 2, 3]
    assert [t.state.name for t in study.trials].count("FAIL") == 1


def test_the_cli_prints_the_front_and_a_runnable_spec_of_a_pick(url, workdir):
    runner = CliRunner()
    shown = runner.invoke(cli, ["best", "mo", "--store", url])
    assert shown.exit_code == 0, shown.output
    assert "Pareto front (max val_accuracy, min n_params): 3 trials" in shown.output
    assert "4 of 6 trials meet n_params <= 5000" in shown.output
    picked = runner.invoke(cli, ["best", "mo", "--store", url, "--pick", "3"])
    assert picked.exit_code == 0, picked.output
    spec = yaml.safe_load(picked.output)
    assert spec["name"] == "mo-trial3" and spec["model"]["hidden_size"] == 11
    (workdir / "pick.yaml").write_text(picked.output)
    assert runner.invoke(cli, ["validate", str(workdir / "pick.yaml")]).exit_code == 0
    missing = runner.invoke(cli, ["best", "mo", "--store", url, "--pick", "9"])
    assert missing.exit_code == 2 and "has no trial 9" in missing.output
    listing = runner.invoke(cli, ["show", "mo", "--store", url])
    assert "*3 " in listing.output and "3 trials on the Pareto front" in listing.output


def test_a_store_of_the_current_release_opens_unchanged(workdir):
    copy = workdir / "old.db"
    shutil.copy(FIXTURE, copy)
    experiment = Experiment("before-registry", f"sqlite:///{copy}")
    trials = experiment.trials()
    assert "pareto" not in trials and len(trials) == 2
    assert experiment.objectives == {experiment.metric: experiment.mode}
    assert len(experiment.pareto()) == 1  # the best trial


def test_the_report_shows_the_front_and_importance_per_objective_in_chromium(url, workdir):
    from hpo.results._report import figures
    from tests.results.test_report import PNG_MAGIC, open_in_chromium

    experiment = Experiment("mo", url)
    drawn = list(figures(experiment))
    assert drawn[:2] == ["progress", "front"]
    assert {"importance-val_accuracy", "importance-n_params"} <= set(drawn)
    assert "importance" not in drawn  # one objective's importance would mislead
    page = workdir / "report.html"
    result = CliRunner().invoke(cli, ["report", "mo", "--store", url, "-o", str(page)])
    assert result.exit_code == 0, result.output
    seen = open_in_chromium(page, workdir / "report.png")
    assert [f["id"] for f in seen["figures"]] == [f"fig-{key}" for key in drawn]
    for figure in seen["figures"]:
        assert figure["drawn"] >= 5 and figure["width"] > 200, figure
    assert seen["errors"] == [] and seen["requests"] == [page.resolve().as_uri()]
    assert "Pareto front (3 trials)" in seen["text"]
    assert (workdir / "report.png").read_bytes().startswith(PNG_MAGIC)


def test_three_objectives_get_pairwise_panels(workdir):
    from hpo.results._report_pareto import front_figure

    url = f"sqlite:///{workdir / 'three.db'}"
    data = _spec(objectives={"val_accuracy": "max", "n_params": "min", "val_loss": "min"})
    _store(url, "three", data, TRIALS)
    experiment = Experiment("three", url)
    store = Store(url)
    rows = store.trial_rows(experiment.row["id"], ["trial_id", "final_metrics"])
    store.write(
        [
            {
                "experiment_id": experiment.row["id"],
                "trial_id": row["trial_id"],
                "final_metrics": {**row["final_metrics"], "val_loss": 0.1 * i},
            }
            for i, row in enumerate(rows)
            if row["final_metrics"]
        ],
        [],
    )
    figure = front_figure(experiment, experiment.trials())
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [(ax.get_xlabel().split()[0], ax.get_ylabel().split()[0]) for ax in panels] == [
        ("val_accuracy", "n_params"),
        ("val_accuracy", "val_loss"),
        ("n_params", "val_loss"),
    ]
