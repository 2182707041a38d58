"""Several objectives and constraints in a spec: every bad input is an error at its key and
line, exit 2, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hpo.cli._app import cli
from hpo.errors import SpecError, SpecWarning
from hpo.spec._spec import load_spec
from hpo.types import Mode
from tests.conftest import tiny_spec

OBJECTIVES = "objectives: {val_accuracy: max, n_params: min}\n"
NSGA2 = "searcher: {name: optuna, sampler: nsga2, population_size: 8}\n"

BAD = [
    (
        "objectives: {val_accuracy: max, val_auc: min}\n",
        "1: objectives.val_auc",
        "the trainable does not report 'val_auc'; choose among:",
    ),
    ("objectives: {val_accuracy: up}\n", "1: objectives.val_accuracy", "'min' or 'max'"),
    (
        "objectives:\n  val_accuracy: max\n  val_accuracy: min\n",
        "3: objectives.val_accuracy",
        "duplicate key",
    ),
    (
        OBJECTIVES + "constraints: ['val_auc <= 3']\n",
        "2: constraints.0",
        "names 'val_auc', which the trainable does not report",
    ),
    (OBJECTIVES + "constraints: ['n_params == 3']\n", "2: constraints.0", "use a range"),
    (
        OBJECTIVES + "constraints: [\"__import__('os').system('ls') <= 1\"]\n",
        "2: constraints.0",
        "parsed, not run as Python",
    ),
    (
        OBJECTIVES + "searcher: {name: optuna, sampler: qmc}\nconstraints: [x]\n",
        "3: constraints.0",
        "a comparison of a reported metric",
    ),
    (
        OBJECTIVES + "scheduler: {name: asha, metric: val_loss}\n",
        "2: scheduler.metric",
        "'val_loss' is not an objective; choose one of: val_accuracy, n_params",
    ),
    (
        "scheduler: {name: asha, metric: val_loss}\n",
        "1: scheduler.metric",
        "with one `metric`, remove it",
    ),
    (
        OBJECTIVES + "metric: val_loss\n",
        "2: metric",
        "'val_loss' is none of them",
    ),
]


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(body + "data: {name: digits}\n")
    return path


@pytest.mark.parametrize(("body", "where", "message"), BAD)
def test_bad_objectives_and_constraints(tmp_path, body, where, message):
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, body))
    text = str(info.value)
    assert f"spec.yaml:{where}" in text
    assert message in text
    assert info.value.exit_code == 2


def test_a_searcher_that_cannot_serve_several_objectives(monkeypatch, tmp_path):
    from hpo.search import SAMPLERS

    # A plugin's single-objective sampler (the built-in ones all serve several).
    monkeypatch.setitem(SAMPLERS._entries, "cmaes", SAMPLERS._entries["tpe"])
    spec = _write(tmp_path, OBJECTIVES + "searcher: {name: optuna, sampler: cmaes}\n")
    with pytest.raises(SpecError, match="2: searcher: 2 objectives, but Optuna's sampler 'cmaes'"):
        load_spec(spec)


def test_validate_exits_2_and_nothing_runs(tmp_path):
    path = _write(tmp_path, OBJECTIVES + "constraints: ['n_params = 3']\n")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert "constraints.0" in result.output and "parsed, not run as Python" in result.output
    assert not (tmp_path / "hpo-results").exists()


def test_the_first_objective_is_the_metric_the_single_metric_parts_judge(tmp_path):
    spec = load_spec(_write(tmp_path, OBJECTIVES + NSGA2 + "constraints: ['n_params <= 5000']\n"))
    assert (spec.metric, spec.mode) == ("val_accuracy", Mode.MAX)
    assert spec.is_multi_objective
    assert spec.objective_modes() == {"val_accuracy": Mode.MAX, "n_params": Mode.MIN}
    assert [str(c) for c in spec.parsed_constraints()] == ["n_params <= 5000"]
    # the stored spec loads back the same
    again = load_spec(spec.model_dump(mode="json", exclude_unset=True))
    assert again.objectives == spec.objectives and again.metric == spec.metric


def test_a_pruning_scheduler_judges_one_objective_and_says_so(tmp_path):
    body = OBJECTIVES + NSGA2 + "scheduler: {name: asha, metric: n_params}\n"
    with pytest.warns(SpecWarning, match="ASHA stops trials by n_params .min. alone"):
        spec = load_spec(_write(tmp_path, body))
    assert (spec.metric, spec.mode) == ("n_params", Mode.MIN)


@pytest.mark.parametrize("searcher", ["random", "grid", "optuna"])
def test_searchers_that_serve_several_objectives(searcher):
    data = tiny_spec(objectives={"val_accuracy": "max", "model_size_mb": "min"}, searcher=searcher)
    if searcher == "grid":
        data["space"] = {"model.hidden_size": {"type": "grid", "values": [8, 16]}}
        data["budget"] = {}
    del data["metric"], data["mode"]
    assert load_spec(yaml.safe_load(yaml.safe_dump(data))).is_multi_objective
