"""Plugins: an installed package adds a model and a dataset by name, through entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpo.trainable.config import ModelConfig

REPO = Path(__file__).resolve().parents[2]

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "hpo-tiny-plugin"
version = "0.1"

[project.entry-points."hpo.models"]
tiny_linear = "hpo_tiny_plugin:linear"

[project.entry-points."hpo.datasets"]
blobs = "hpo_tiny_plugin:blobs"
not_a_dataset = "hpo_tiny_plugin:linear"
"""

MODULE = '''\
"""A plugin as a third party writes one: torch is imported only inside its builders."""

from hpo.trainable import DatasetEntry, Entry, Task, make_dataset


def linear(cfg, input_shape, output_dim):
    """One linear layer over the flattened input."""
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], output_dim))


def _load(cfg):
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=cfg.n_samples, centers=3, n_features=4, random_state=cfg.data_seed)
    return make_dataset(x, y, Task.CLASSIFICATION)


blobs = Entry(
    DatasetEntry(Task.CLASSIFICATION, _load),
    options=frozenset({"n_samples", "data_seed"}),
    description="three Gaussian blobs",
)
'''

# Run in a fresh interpreter: the registries load plugins once per process.
SCRIPT = """\
import json, sys, warnings
from hpo.spec import load_spec
from hpo.trainable.data import DATASETS

warnings.simplefilter("always")
caught = warnings.catch_warnings(record=True)
out = {"warnings": caught.__enter__()}
spec = load_spec({"name": "builtin", "data": {"name": "iris"}})
out["plugin imported by a built-in spec"] = "hpo_tiny_plugin" in sys.modules
spec = load_spec({
    "name": "plugin",
    "metric": "val_accuracy",
    "mode": "max",
    "data": {"name": "blobs", "n_samples": 150},
    "model": {"name": "tiny_linear"},
    "optimizer": {"lr": 0.05},
    "training": {"epochs": 5, "batch_size": 32},
    "space": {"optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
})
config = spec.base_config()
out["data"] = config["data"]
out["model"] = config["model"]
out["blobs"] = DATASETS.entry("blobs").description
try:
    load_spec({"name": "bad", "data": {"name": "blobs", "noise": 1.0}})
except Exception as exc:
    out["stray"] = str(exc)
try:
    load_spec({"name": "bad", "model": {"name": "tiny_lin"}})
except Exception as exc:
    out["unknown"] = str(exc)

from hpo.trainable import load_dataset
from hpo.trainable.config import DataConfig
from hpo.trainable.loop import fit

dataset = load_dataset(DataConfig.model_validate(config["data"]))
out["epochs"] = [round(m["val_accuracy"], 3) for m in fit(config, dataset)]
out["warnings"] = [str(w.message) for w in out["warnings"] if "hpo." in str(w.message)]
out["datasets"] = list(DATASETS)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny plugin package, installed with pip into a folder of its own."""
    source = tmp_path_factory.mktemp("plugin-src")
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "hpo_tiny_plugin.py").write_text(MODULE)
    target = tmp_path_factory.mktemp("plugin-site")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    pip += ["--no-build-isolation", "--no-index", "--target", str(target), str(source)]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return target


def test_a_plugins_model_and_dataset_validate_and_train_by_name(plugin_dir: Path, tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{plugin_dir}"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    # Loaded lazily: a spec of built-in names does not import the plugin.
    assert out["plugin imported by a built-in spec"] is False
    # Its options, as it registered them, are what its config holds.
    assert out["data"] == {
        "name": "blobs",
        "val_fraction": 0.2,
        "test_fraction": 0.0,
        "standardize": True,
        "class_names": None,
        "n_samples": 150,
        "data_seed": 0,
    }
    assert out["model"]["name"] == "tiny_linear"
    # A bare builder receives the whole model config: it holds every key.
    assert set(out["model"]) == set(ModelConfig.model_fields)
    assert out["blobs"] == "three Gaussian blobs"
    assert (
        "data.noise: does not apply to dataset 'blobs'; it reads: data_seed, n_samples"
        in out["stray"]
    )
    assert (
        "unknown model 'tiny_lin'; did you mean 'tiny_linear'? available: cnn, mlp, tiny_linear"
        in (out["unknown"])
    )
    # A plugin's value of the wrong type is left out, with a warning that names it.
    assert "not_a_dataset" not in out["datasets"] and "blobs" in out["datasets"]
    assert out["warnings"] == [
        "dataset 'not_a_dataset' from hpo_tiny_plugin:linear (hpo.datasets) is a function, "
        "not DatasetEntry; it is left out"
    ]
    assert len(out["epochs"]) == 5 and out["epochs"][-1] > 0.8  # blobs are easy to tell apart
