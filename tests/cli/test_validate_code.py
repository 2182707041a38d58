"""`hpo validate` and `hpo run` on specs that name code by import path, through click's runner:
exit 2 with the file, line and key, before anything runs; warnings shown, not raised."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpo.cli._app import cli
from tests.spec.user_modules import put_on_path, write_modules


@pytest.fixture
def user_code(tmp_path: Path):
    code = tmp_path / "code"
    code.mkdir()
    with put_on_path(code) as path:
        yield path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def write(directory: Path, body: str) -> Path:
    path = directory / "spec.yaml"
    path.write_text("name: x\n" + body)
    return path


# (spec body after `name: x`, what `hpo validate` prints for it).
BAD = [
    (
        "data:\n  name: 'user_dta:load'\n",
        "spec.yaml:3: data.name: cannot load 'user_dta:load': cannot import 'user_dta'",
    ),
    (
        "data: {name: 'user_data:no_config'}\n",
        "spec.yaml:2: data.name: hpo calls 'user_data:no_config' with one argument, the data "
        "section as a dict, but its signature is (); write it as `def no_config(config): ...`",
    ),
    (
        "transforms:\n  train:\n    - {name: user_transforms.Jiter}\n",
        "spec.yaml:4: transforms.train.0.name: module 'user_transforms' has no attribute "
        "'Jiter'; did you mean 'Jitter'?",
    ),
    (
        "loader: {collate: 'user_collate:colate'}\n",
        "spec.yaml:2: loader.collate: cannot load 'user_collate:colate': module 'user_collate' "
        "has no attribute 'colate'; did you mean 'collate'?",
    ),
    (
        "model:\n  name: 'user_models:Nett'\n",
        "spec.yaml:3: model.name: cannot load 'user_models:Nett': module 'user_models' has no "
        "attribute 'Nett'; did you mean 'Net'?",
    ),
    (
        "loss:\n  name: cross_entropi\n",
        "spec.yaml:3: loss.name: unknown loss 'cross_entropi'; did you mean 'cross_entropy'?",
    ),
    (
        "metrics: [accuracy, acuracy]\n",
        "spec.yaml:2: metrics: unknown metric 'acuracy'; did you mean 'accuracy'?",
    ),
    (
        "metrics: [accuracy]\nmetric: val_f1\n",
        "spec.yaml:3: metric: the trainable does not report 'val_f1' for dataset 'digits' and "
        "metrics ['accuracy']; choose one of: ",
    ),
    (
        "loss: {name: 'user_losses:focal'}\n",
        "spec.yaml:2: loss.name: cannot load 'user_losses:focal': cannot import 'user_losses'",
    ),
    (
        "trainable: 'user_pipeline:MyPipline'\n",
        "spec.yaml:2: trainable: cannot load 'user_pipeline:MyPipline': module 'user_pipeline' "
        "has no attribute 'MyPipline'; did you mean 'MyPipeline'?",
    ),
    (
        "trainable: 'user_pipeline:MyPipeline'\nmetric: val_acc\n",
        "spec.yaml:3: metric: the trainable does not report 'val_acc' for dataset 'digits'",
    ),
    (
        "data:\n  name: iris\n  imge_size: 32\n",
        "spec.yaml:4: data.imge_size: unknown key for dataset 'iris'; did you mean 'image_size'?",
    ),
    (
        "loader:\n  num_workers: -2\n",
        "spec.yaml:3: loader.num_workers: Input should be greater than or equal to 0 (got -2)",
    ),
    (
        "loader: {num_workers: 1.5}\n",
        "spec.yaml:2: loader.num_workers: Input should be a valid integer (got 1.5)",
    ),
]


@pytest.mark.usefixtures("user_code")
@pytest.mark.parametrize(("body", "expected"), BAD)
def test_validate_reports_bad_code_at_its_key(tmp_path: Path, body: str, expected: str):
    result = invoke("validate", str(write(tmp_path, body)))
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())  # rich may wrap long lines
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("user_code")
def test_validate_accepts_code_that_imports(tmp_path: Path):
    body = (
        "trainable: 'user_pipeline:MyPipeline'\n"
        "data: {name: 'user_data:load', vocab_size: 100}\n"
        "model: {name: 'user_models:Net', params: {width: 4}}\n"
        "loader: {collate: 'user_collate:collate'}\n"
        "transforms: {train: [{name: user_transforms.Jitter, amount: 0.1}]}\n"
        "resources: {workers: 2}\n"
        "scheduler: {name: asha, grace_period: 1}\n"
    )
    result = invoke("validate", str(write(tmp_path, body)))
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout and "warning" not in result.output


@pytest.mark.usefixtures("user_code")
def test_run_reports_bad_code_before_anything_starts(workdir: Path):
    result = invoke("run", str(write(workdir, "data: {name: 'user_data:two'}\n")))
    assert result.exit_code == 2
    assert "spec.yaml:2: data.name: hpo calls 'user_data:two'" in result.output
    assert not (workdir / "hpo-results").exists()


def test_validate_and_a_dry_run_show_a_warning_and_go_on(workdir: Path):
    spec = write(
        workdir,
        "data: {name: image_folder, path: images}\nresources: {cpu: 1}\nloader:\n  num_workers: 3\n",
    )
    for args in (["validate", str(spec)], ["run", str(spec), "--dry-run"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        shown = " ".join(result.stderr.split())
        assert (
            f"warning: {spec}:5: loader.num_workers: 3 loader processes, but resources.cpu is "
            "1 per trial"
        ) in shown
        assert "Traceback" not in result.output
    assert not (workdir / "hpo-results").exists()


def test_validating_user_code_imports_neither_torch_nor_ray_itself(tmp_path: Path):
    """The user's modules (here free of torch) are imported from PYTHONPATH; hpo's checks of
    them need neither torch nor Ray."""
    write_modules(tmp_path)
    spec = write(
        tmp_path,
        "data: {name: 'user_data:load'}\nmodel: {name: 'user_models:Net'}\n"
        "loader: {collate: 'user_collate:collate'}\n"
        "transforms: {eval: [{name: 'user_transforms:Resize'}]}\n",
    )
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from hpo.cli._app import cli\n"
        f"result = CliRunner().invoke(cli, ['validate', {str(spec)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('torch', 'ray', 'user_data') if m in sys.modules))\n"
    )
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['user_data']"
