"""`hpo lr-find` through click's runner: in this process, no Ray, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpo.cli._app import cli
from tests.conftest import SEARCH_SPACES

MLP = str(SEARCH_SPACES / "digits_mlp.yaml")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def user_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module of user trainables, importable while the test runs."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "lrf_user.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            import hpo

            class Blobs(torch.utils.data.Dataset):
                def __init__(self, n, seed):
                    g = torch.Generator().manual_seed(seed)
                    self.y = torch.randint(0, 3, (n,), generator=g)
                    self.x = torch.randn(n, 4, generator=g) + 2.0 * self.y[:, None]
                def __len__(self):
                    return len(self.y)
                def __getitem__(self, i):
                    return self.x[i], self.y[i]

            class BlobsPipeline(hpo.Pipeline):
                def setup_data(self):
                    self.train_dataset = Blobs(512, 1)
                    self.val_dataset = Blobs(64, 2)
                def setup_model(self):
                    self.model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))

            class Interrupted(BlobsPipeline):
                def train_epoch(self, epoch):
                    raise KeyboardInterrupt  # what Ctrl-C raises in the middle of training

            def train(config):
                hpo.report(score=1.0)
            """
        )
    )
    monkeypatch.syspath_prepend(str(code))
    yield code
    for name in ("lrf_user",):
        sys.modules.pop(name, None)


def pipeline_spec(directory: Path, pipeline: str) -> Path:
    path = directory / "spec.yaml"
    path.write_text(
        f"name: blobs\ntrainable: 'lrf_user:{pipeline}'\n"
        "data: {name: digits}  # its setup_data opens its own\n"
        "optimizer: {name: sgd, lr: 0.01}\ntraining: {epochs: 2, batch_size: 32}\n"
    )
    return path


def test_it_prints_the_curve_both_suggestions_and_the_range(workdir: Path):
    plot = workdir / "curve.svg"
    result = invoke("lr-find", MLP, "--plot", str(plot))
    assert result.exit_code == 0, result.output
    assert "learning rate" in result.output and "┤" in result.output  # plotext's axis
    assert "steepest descent:" in result.output and "valley (fastai):" in result.output
    assert "optimizer.lr: {type: float, low: " in result.output
    assert plot.read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in workdir.iterdir()) == ["curve.svg"]  # no store, no results


def test_json_gives_the_points_suggestions_and_range(workdir: Path):
    result = invoke("lr-find", MLP, "--json", "--steps", "60", "--min", "1e-5", "--max", "1")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    points = found["points"]
    assert points[0]["lr"] == pytest.approx(1e-5) and len(points) <= 60
    assert set(points[0]) == {"lr", "loss", "smoothed"}
    assert {s["method"] for s in found["suggestions"].values()} == {
        "steepest descent",
        "valley (fastai)",
    }
    lr_range = found["range"]["optimizer.lr"]
    assert lr_range["log"] is True and 0 < lr_range["low"] < lr_range["high"] <= 1


def test_a_bad_spec_exits_2_with_its_line_and_key(tmp_path: Path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\noptimizer:\n  name: adam\n  lrr: 0.1\n")
    result = invoke("lr-find", str(spec))
    assert result.exit_code == 2
    assert "bad.yaml:4: optimizer.lrr" in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("user_code")
def test_a_function_trainable_is_refused_with_what_to_do(tmp_path: Path):
    spec = tmp_path / "fn.yaml"
    spec.write_text("name: fn\ntrainable: 'lrf_user:train'\nmetric: score\nconfig: {}\n")
    result = invoke("lr-find", str(spec))
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert "'lrf_user:train' is a function" in output
    assert "make it a subclass of hpo.Pipeline" in output


@pytest.mark.usefixtures("user_code")
def test_a_pipeline_subclass_runs_with_its_own_data_and_model(workdir: Path):
    result = invoke("lr-find", str(pipeline_spec(workdir, "BlobsPipeline")), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert len(found["points"]) > 16  # more steps than its 16 batches: the loader cycled
    assert found["range"]["line"].startswith("optimizer.lr: {type: float")


@pytest.mark.usefixtures("user_code")
def test_ctrl_c_exits_130_and_writes_nothing(workdir: Path):
    spec = pipeline_spec(workdir, "Interrupted")
    result = invoke("lr-find", str(spec))
    assert result.exit_code == 130, result.output
    assert "nothing was written" in result.output
    assert sorted(p.name for p in workdir.iterdir()) == ["code", "spec.yaml"]


def test_a_plot_file_must_be_svg_or_png(tmp_path: Path):
    result = invoke("lr-find", MLP, "--plot", str(tmp_path / "curve.jpg"))
    assert result.exit_code == 2
    assert "--plot writes .svg or .png files, got 'curve.jpg'" in result.output


def test_its_help_imports_no_torch():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom hpo.cli._app import cli\n"
        "assert CliRunner().invoke(cli, ['lr-find', '--help']).exit_code == 0\n"
        "print(sorted(m for m in ('torch', 'ray', 'plotext') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
