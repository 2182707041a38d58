"""The `hpo` command, through click's runner (in-process, on the session's Ray) and once as a process."""

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from hpo.cli._app import cli
from hpo.results import load
from hpo.trainable.config import TrainableSections
from tests.conftest import SEARCH_SPACES, tiny_spec


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def write_spec(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump(tiny_spec(**changes), sort_keys=False))
    return path


def test_validate_accepts_the_shipped_specs():
    for path in SEARCH_SPACES.glob("*.yaml"):
        result = invoke("validate", str(path))
        if "warm_start:" in path.read_text():
            # It starts from an experiment another shipped spec runs: not in this empty store.
            assert result.exit_code == 2, result.output
            assert "warm_start.from.0: no experiment 'digits_random'" in result.output
            continue
        assert result.exit_code == 0, result.output
        assert "ok" in result.output


def test_validate_rejects_a_misspelled_key_without_a_traceback(tmp_path: Path):
    spec = tmp_path / "typo.yaml"
    spec.write_text("name: typo\noptimizer:\n  name: adam\n  lrr: 0.1\n")
    result = invoke("validate", str(spec))
    assert result.exit_code == 2
    assert "typo.yaml:4: optimizer.lrr: unknown key; did you mean 'lr'?" in result.output
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(tmp_path: Path):
    spec = tmp_path / "typo.yaml"
    spec.write_text("name: typo\nbogus: 1\n")
    result = invoke("validate", str(spec), "--debug")
    assert result.exit_code != 0
    assert result.exception is not None  # re-raised for the traceback


def test_usage_errors_exit_2(tmp_path: Path):
    assert invoke("run").exit_code == 2  # missing SPEC
    assert invoke("run", str(tmp_path / "missing.yaml")).exit_code == 2
    result = invoke(
        "validate", str(write_spec(tmp_path / "s.yaml")), "--set", "budget.num_samples=0"
    )
    assert result.exit_code == 2
    assert "(from --set budget.num_samples=0)" in result.output


def test_reading_commands_without_a_store_say_so_and_create_nothing(workdir: Path):
    listing = invoke("ls")
    assert listing.exit_code == 0 and "No experiments in" in listing.output
    for command in (["show", "x"], ["best", "x"], ["resume", "x"], ["report", "x", "-o", "r.html"]):
        result = invoke(*command)
        assert result.exit_code == 2, (command, result.output)
        assert f"no results store at {workdir}/hpo-results/hpo.db" in result.output
        assert "Traceback" not in result.output
    assert list(workdir.iterdir()) == []


def test_ctrl_c_while_the_data_loads_exits_130_without_a_traceback(workdir: Path, monkeypatch):
    import hpo.runner._runner

    def interrupted(spec):
        raise KeyboardInterrupt  # what Python raises on a SIGINT outside the search's handling

    monkeypatch.setattr(hpo.runner._runner, "load_data", interrupted)
    result = invoke("run", str(write_spec(workdir / "s.yaml")))
    assert result.exit_code == 130
    assert "interrupted." in result.output
    assert "Aborted" not in result.output and "Traceback" not in result.output


def test_dry_run_runs_nothing_and_writes_nothing(workdir: Path):
    spec = write_spec(workdir / "s.yaml", searcher="optuna")
    result = invoke("run", str(spec), "--dry-run", "--set", "budget.num_samples=2")
    assert result.exit_code == 0, result.output
    assert "First 2 trials the optuna searcher proposes" in result.output
    assert "continuous" in result.output
    assert not (workdir / "hpo-results").exists()


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_run_then_ls_show_and_best(workdir: Path):
    spec = write_spec(workdir / "s.yaml", scheduler={"name": "asha", "grace_period": 1})
    result = invoke("run", str(spec), "--name", "cli-run", "--set", "budget.num_samples=3")
    assert result.exit_code == 0, result.output
    assert "Best config (" in result.output
    assert "hpo show cli-run" in result.output

    listing = invoke("ls")
    assert listing.exit_code == 0 and "cli-run" in listing.output

    shown = invoke("show", "cli-run")
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if line.startswith("│")]
    assert sorted(int(row.split("│")[1]) for row in rows) == [0, 1, 2]  # every trial, by number

    best = invoke("best", "cli-run")
    assert best.exit_code == 0
    best_spec = yaml.safe_load(best.output)
    assert set(TrainableSections.model_fields) | {
        "seed",
        "budget",
        "metric",
        "mode",
        "name",
    } == set(best_spec)
    # Only what applies to digits, an MLP and no LR schedule (the stored config is the same).
    assert not {"n_samples", "n_features", "n_informative"} & set(best_spec["data"])
    assert not {"channels", "num_blocks", "kernel_size"} & set(best_spec["model"])
    assert best_spec["lr_scheduler"] == {"name": "none"}
    stored = load("cli-run").config(0)
    assert stored["lr_scheduler"] == {"name": "none"} and "channels" not in stored["model"]
    (workdir / "best.yaml").write_text(best.output)
    assert invoke("validate", str(workdir / "best.yaml")).exit_code == 0  # runs alone
    assert json.loads(invoke("best", "cli-run", "-f", "json").output) == best_spec

    as_json = json.loads(invoke("show", "cli-run", "-f", "json", "--top", "2").output)
    assert len(as_json) == 2 and as_json[0]["best.val_accuracy"] >= as_json[1]["best.val_accuracy"]
    by_number = invoke("show", "cli-run", "-f", "csv", "--sort", "-number").output.splitlines()
    assert [line.split(",")[1] for line in by_number[1:]] == ["2", "1", "0"]
    completed = json.loads(invoke("show", "cli-run", "-f", "json", "--status", "completed").output)
    assert {t["status"] for t in completed} <= {"COMPLETED"}
    bad_sort = invoke("show", "cli-run", "--sort", "best.val_acc")
    assert bad_sort.exit_code == 2 and "did you mean best.val_accuracy" in bad_sort.output

    assert invoke("export", "cli-run", "-o", str(workdir / "t.parquet")).exit_code == 0
    table = pd.read_parquet(workdir / "t.parquet")
    assert len(table) == 3 and "params.optimizer.lr" in table.columns
    assert invoke("export", "cli-run", "-o", str(workdir / "h.csv"), "--history").exit_code == 0
    assert {"trial_id", "iteration", "val_accuracy"} <= set(pd.read_csv(workdir / "h.csv").columns)
    assert invoke("export", "cli-run", "-o", str(workdir / "t.txt")).exit_code == 2

    study_url = f"sqlite:///{workdir / 'optuna.db'}"
    assert invoke("export", "cli-run", "--optuna", study_url).exit_code == 0
    study = optuna.load_study(study_name="cli-run", storage=study_url)
    assert len(study.trials) == 3
    assert all(t.intermediate_values for t in study.trials)
    assert {"optimizer.lr", "model.hidden_size"} == set(study.trials[0].params)
    assert invoke("export", "cli-run", "--optuna", study_url).exit_code == 2  # no overwriting

    assert invoke("show", "nope").exit_code == 2


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_a_run_with_no_successful_trial_exits_1(workdir: Path):
    spec = write_spec(
        workdir / "s.yaml",
        space={},
        optimizer={"name": "sgd", "lr": 1e12},
        budget={"num_samples": 1},
    )
    result = invoke("run", str(spec), "--store", str(workdir / "other.db"))
    assert result.exit_code == 1
    assert "FloatingPointError" in result.output
    assert (workdir / "other.db").exists()


def test_python_dash_m_hpo_is_the_command(tmp_path: Path):
    spec = tmp_path / "typo.yaml"
    spec.write_text("name: typo\nmode: maximise\n")
    done = subprocess.run(
        [sys.executable, "-m", "hpo", "validate", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "mode: Input should be 'min' or 'max'" in done.stderr
    assert "Traceback" not in done.stderr


def test_main_returns_the_exit_code_it_means(tmp_path: Path, capsys):
    from hpo.cli import main

    good, bad = tmp_path / "good.yaml", tmp_path / "typo.yaml"
    good.write_text("name: good\n")
    bad.write_text("name: typo\nmode: maximise\n")
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(bad)]) == 2  # a spec error
    assert main(["no-such-command"]) == 2  # click's usage error, reported by click
    assert "No such command 'no-such-command'" in capsys.readouterr().err
    assert main(["--help"]) == 0


def test_version_comes_from_the_installed_metadata(monkeypatch, capsys):
    from importlib import metadata

    import hpo
    from hpo.cli import main

    installed = metadata.version("hpo-orchestra")
    assert hpo.__version__ == installed
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"hpo, version {installed}"
    # Read when asked, not a copy kept in the source.
    monkeypatch.setattr(metadata, "version", lambda name: {"hpo-orchestra": "9.8.7"}[name])
    assert hpo.__version__ == "9.8.7"


def test_schema_is_json_schema():
    import json

    result = invoke("schema")
    assert result.exit_code == 0
    assert json.loads(result.output)["title"] == "Spec"


def test_the_front_door_imports_neither_torch_nor_ray(tmp_path: Path):
    """`hpo --help`, `hpo validate` and `hpo ls` answer in a moment: no torch, no Ray."""
    spec = SEARCH_SPACES / "digits_mlp.yaml"
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from hpo.cli._app import cli\n"
        f"for args in (['--help'], ['validate', {str(spec)!r}], ['ls', '--store', {str(tmp_path / 'x.db')!r}]):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.ray  # the data loads while Ray starts; Ray is stopped again on its error
def test_data_that_cannot_be_loaded_is_a_spec_error_before_anything_runs(workdir: Path):
    spec = workdir / "f.yaml"
    spec.write_text(
        "name: f\nmetric: val_loss\ndata: {name: file, path: nothere.csv, target: y, task: regression}\n"
    )
    result = invoke("run", str(spec))
    assert result.exit_code == 2
    assert "data: cannot load the data: data file 'nothere.csv' not found" in result.output
    assert not (workdir / "hpo-results").exists()


def test_the_command_imports_the_users_modules_from_the_working_directory(tmp_path: Path):
    """`hpo` (the console script, not `python -m`) finds `my_models.py` beside the spec, as a
    user expects; a misspelt module is a spec error naming the key."""
    (tmp_path / "my_models.py").write_text(
        "def net(config, input_shape, output_dim):\n    return None\n"
    )
    (tmp_path / "ok.yaml").write_text("name: ok\nmodel: {name: 'my_models:net'}\n")
    (tmp_path / "typo.yaml").write_text("name: typo\nmodel: {name: 'my_modles:net'}\n")
    command = str(Path(sys.executable).parent / "hpo")
    ok = subprocess.run(
        [command, "validate", "ok.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    typo = subprocess.run(
        [command, "validate", "typo.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert typo.returncode == 2
    assert "model.name: cannot load 'my_modles:net'" in typo.stderr


def test_run_refuses_a_ray_client_address_before_starting_anything(tmp_path: Path):
    result = invoke("run", str(write_spec(tmp_path / "s.yaml")), "--address", "ray://head:10001")
    assert result.exit_code == 2
    assert "--address: 'ray://head:10001': Ray Client (ray://) runs the search's driver" in (
        result.output
    )
    assert "ray job submit" in result.output
