"""A store written by the release before configs held only what applies still reads.

The fixture's specs and trial configs hold every option of every kind (see
tests/fixtures/README.md); `hpo show`, `hpo best` and `hpo resume` load them as they are.
"""

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hpo.cli._app import cli

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store-b256439.db"
NAME = "before-registry"


@pytest.fixture
def old_store(workdir: Path) -> str:
    copy = workdir / "old.db"  # resume may write: never the fixture itself
    shutil.copy(FIXTURE, copy)
    return f"sqlite:///{copy}"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_show_reads_a_store_of_the_release_before(old_store: str):
    shown = invoke("show", NAME, "--store", old_store)
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if line.startswith("│")]
    assert sorted(int(row.split("│")[1]) for row in rows) == [0, 1]
    trial = invoke("show", NAME, "--store", old_store, "--trial", "1")
    assert trial.exit_code == 0, trial.output
    assert "COMPLETED" in trial.output


def test_best_prints_a_spec_that_validates(old_store: str, workdir: Path):
    best = invoke("best", NAME, "--store", old_store)
    assert best.exit_code == 0, best.output
    spec = yaml.safe_load(best.output)
    assert spec["data"]["name"] == "iris" and spec["budget"] == {"num_samples": 1}
    (workdir / "best.yaml").write_text(best.output)
    validated = invoke("validate", str(workdir / "best.yaml"))
    assert validated.exit_code == 0, validated.output


def test_resume_loads_the_stored_spec(old_store: str):
    """The spec stored by that release validates: the completed experiment has nothing left."""
    resumed = invoke("resume", NAME, "--store", old_store)
    assert resumed.exit_code == 0, resumed.output
    assert "has nothing left to run" in resumed.output


def test_ls_reads_a_store_of_the_release_before_and_upgrades_it(old_store: str):
    """Version 3 added the stop reason: an old store opens, and its experiment has none."""
    listed = invoke("ls", "--store", old_store)
    assert listed.exit_code == 0, listed.output
    assert NAME in listed.output and "stopped early" not in listed.output


def test_an_old_experiment_has_no_stop_reason_and_a_schedule_of_first_segments(old_store: str):
    import hpo

    experiment = hpo.load(NAME, old_store)
    assert experiment.row["stop_reason"] is None
    schedule = experiment.schedule()
    assert sorted(schedule["number"]) == [0, 1] and set(schedule["segment"]) == {0}
