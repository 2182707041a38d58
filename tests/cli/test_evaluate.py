"""`hpo show --best` and `hpo evaluate` on a real tiny search with a test split."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from rich.console import Console

import hpo
from hpo.cli._app import cli
from hpo.errors import UsageError
from hpo.results import Experiment
from tests.conftest import tiny_spec


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def ran(ray_session, tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    spec = tiny_spec(
        name="evaluated",
        data={"name": "digits", "test_fraction": 0.2},
        checkpoint={"every": 1, "keep_trials": 3},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("evaluate-run"))
        patch.delenv("HPO_STORE", raising=False)
        return hpo.run(spec, console=Console(quiet=True))


@pytest.mark.ray
def test_show_best_prints_the_per_class_table_and_a_ten_by_ten_matrix(ran: Experiment):
    shown = invoke("show", ran.name, "--store", ran.store.url, "--best")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Confusion matrix" in line)
    rows = [line for line in lines[start:] if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == [str(n) for n in range(10)]
    assert all(len(row.split("│")) == 13 for row in rows)  # name + 10 counts, and the edges
    per_class = [line for line in lines[:start] if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in per_class][:10] == [str(n) for n in range(10)]
    evaluation = ran.evaluation()
    assert evaluation.confusion.shape == (10, 10)
    assert evaluation.per_class.loc["macro avg", "recall"] == pytest.approx(
        ran.row["test_metrics"]["test_recall"], abs=1e-6
    )
    as_json = invoke("show", ran.name, "--store", ran.store.url, "--best", "-f", "json")
    assert '"confusion"' in as_json.output


@pytest.mark.ray
def test_evaluate_refuses_the_test_split_of_another_trial_unless_forced(ran: Experiment):
    best = ran.best_number()
    other = next(n for n in ran.trials()["number"] if n != best)
    refused = invoke(
        "evaluate", ran.name, "--store", ran.store.url, "--trial", str(other), "--split", "test"
    )
    assert refused.exit_code == 2
    assert "fifth pitfall" in refused.output and "--force" in refused.output
    assert [e.trial for e in ran.evaluations()] == [best]  # nothing was stored

    on_val = invoke("evaluate", ran.name, "--store", ran.store.url, "--trial", str(other))
    assert on_val.exit_code == 0, on_val.output
    evaluation = ran.evaluation(other, "val")
    row = ran.trials().set_index("number").loc[other]
    # The checkpoint is the trial's last epoch: its stored val_accuracy, computed again.
    assert evaluation.metrics["val_accuracy"] == pytest.approx(row["final.val_accuracy"])

    forced = invoke(
        "evaluate",
        ran.name,
        "--store",
        ran.store.url,
        "--trial",
        str(other),
        "--split",
        "test",
        "--force",
    )
    assert forced.exit_code == 0, forced.output
    assert ran.evaluation(other, "test").confusion.shape == (10, 10)
    # The experiment's test metrics stay the best trial's.
    assert ran.store.experiment(ran.name)["test_metrics"] == ran.evaluation().metrics.to_dict()


@pytest.mark.ray
def test_a_missing_evaluation_says_how_to_make_one(ran: Experiment):
    both = invoke("show", ran.name, "--store", ran.store.url, "--best", "--trial", "0")
    assert both.exit_code == 2 and "give one of them" in both.output
    best = ran.best_number()  # no test here evaluates the best trial on the val split
    with pytest.raises(UsageError, match=f"hpo evaluate evaluated --trial {best} --split val"):
        ran.evaluation(best, "val")
