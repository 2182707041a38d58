"""`hpo check` and `hpo run --check` through the CLI: exit codes, output, JSON, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from hpo.cli._app import cli

SOFTMAX = (
    "import torch\nfrom torch import nn\n"
    "class Net(nn.Module):\n"
    "    def __init__(self, num_classes):\n"
    "        super().__init__()\n"
    "        self.fc = nn.Linear(64, num_classes)\n"
    "    def forward(self, x):\n"
    "        return torch.softmax(self.fc(x.flatten(1)), dim=1)\n"
)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def write(path: Path, **changes) -> Path:
    spec = {
        "name": "c",
        "metric": "val_loss",
        "data": {"name": "digits"},
        "model": {"name": "mlp", "hidden_size": 16},
        "training": {"epochs": 1},
    }
    path.write_text(yaml.safe_dump({**spec, **changes}))
    return path


def test_a_passing_spec_exits_0_with_a_mark_per_check(workdir: Path):
    result = invoke("check", str(write(workdir / "s.yaml")), "--sample", "0")
    assert result.exit_code == 0, result.output
    assert "✔ one batch overfits: loss" in result.output
    assert "✔ gradients: every parameter gets a finite gradient" in result.output
    assert "checks passed on 1 configs" in result.output
    assert not (workdir / "hpo-results").exists()  # nothing written


def test_a_failing_check_exits_1_with_the_fix_and_json_says_so(workdir: Path, monkeypatch):
    (workdir / "soft.py").write_text(SOFTMAX)
    monkeypatch.syspath_prepend(str(workdir))
    spec = str(write(workdir / "s.yaml", model={"name": "soft:Net"}))
    result = invoke("check", spec, "--sample", "0")
    assert result.exit_code == 1, result.output
    assert "✘ model: logits, not probabilities: the outputs already sum to 1" in result.output
    assert "fix: return the logits" in result.output
    as_json = invoke("check", spec, "--sample", "0", "--json")
    assert as_json.exit_code == 1
    payload = json.loads(as_json.output)
    assert payload["ok"] is False
    names = [r["name"] for r in payload["results"] if not r["ok"]]
    assert "model: logits, not probabilities" in names


def test_an_invalid_spec_exits_2_with_file_line_and_key(workdir: Path):
    spec = workdir / "bad.yaml"
    spec.write_text("name: bad\noptimizer: {lrr: 0.1}\n")
    result = invoke("check", str(spec))
    assert result.exit_code == 2
    assert "bad.yaml:2: optimizer.lrr: unknown key" in result.output


def test_set_overrides_apply(workdir: Path):
    spec = str(write(workdir / "s.yaml"))
    result = invoke("check", spec, "--sample", "0", "--set", "training.batch_size=32")
    assert result.exit_code == 0, result.output
    assert "y int64 [32]" in result.output


def test_run_check_stops_with_exit_2_before_anything_starts(workdir: Path, monkeypatch):
    (workdir / "soft.py").write_text(SOFTMAX)
    monkeypatch.syspath_prepend(str(workdir))
    result = invoke("run", str(write(workdir / "s.yaml", model={"name": "soft:Net"})), "--check")
    assert result.exit_code == 2, result.output
    assert "a check failed; nothing was run" in result.output
    assert not (workdir / "hpo-results").exists()


def test_ctrl_c_exits_130(workdir: Path, monkeypatch):
    """Ctrl-C inside a check (here, the user's forward) is not a check's failure: it ends
    the command with 130."""
    (workdir / "stopped.py").write_text(
        SOFTMAX.replace(
            "return torch.softmax(self.fc(x.flatten(1)), dim=1)", "raise KeyboardInterrupt"
        )
    )
    monkeypatch.syspath_prepend(str(workdir))
    result = invoke("check", str(write(workdir / "s.yaml", model={"name": "stopped:Net"})))
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output
