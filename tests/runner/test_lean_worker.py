"""A trial's worker imports what a trial needs (torch, hpo's trainable, Ray's reporting), and
none of the driver's analysis, store or display libraries.

One real trial through `hpo.run` on the session's Ray, with hpo's own trainable; its model
(`tests.runner.worker_probe`) writes down `sys.modules` from inside the worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hpo.runner._runner import run
from tests.conftest import tiny_spec

# What only the driver uses: the store (SQLAlchemy, Alembic, hpo.store), the analysis and its
# plots, the events' consumers, and scikit-learn, which only loads built-in datasets (in the
# driver as well).
DRIVER_ONLY = ("sqlalchemy", "alembic", "matplotlib", "sklearn")
HPO_DRIVER_ONLY = ("hpo.store", "hpo.results", "hpo.events", "hpo.runner", "hpo.cli")
# Ray Tune itself imports pandas (and pyarrow) in `ray/tune/__init__.py`, as a check of its
# requirements, and rich through `ray.tune.tune` -> `ray.tune.experimental.output`, in every
# process that imports `ray.tune`. A trial's worker runs Ray Tune's function-trainable actor,
# so these are in it whatever hpo does; the subprocess test below shows that hpo's code a
# worker runs imports none of them.
RAY_TUNE_IMPORTS = ("pandas", "pyarrow", "rich")
# What a worker imports of hpo: the trainables Ray runs, and what they import when they run.
WORKER_CODE = (
    "hpo.trainable.ray_trainable",
    "hpo.trainable.distributed",
    "hpo.trainable.user_function",
    "hpo.trainable.loop",
    "hpo.resuming",
)


def _driver_only(modules: set[str], libraries: tuple[str, ...]) -> list[str]:
    return sorted(
        m
        for m in modules
        if m.split(".")[0] in libraries
        or m.startswith(tuple(f"{h}." for h in HPO_DRIVER_ONLY))
        or m in HPO_DRIVER_ONLY
    )


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_a_trial_worker_imports_no_driver_library(workdir: Path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    np.savez(workdir / "data.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    out = workdir / "modules.json"
    spec = tiny_spec(
        name="lean",
        data={"name": "file", "path": str(workdir / "data.npz"), "task": "classification"},
        model={"name": "tests.runner.worker_probe:probe_mlp", "params": {"out": str(out)}},
        space={"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2}},
        training={"epochs": 2, "batch_size": 64},
        budget={"num_samples": 1},
        tracking={"tensorboard": False},
    )
    experiment = run(spec)
    assert experiment.trials()["status"].tolist() == ["COMPLETED"]
    record = json.loads(out.read_text())
    assert record["pid"] != os.getpid()  # written by the trial's worker, not by this driver
    modules = set(record["modules"])
    assert {"torch", "hpo.trainable.pipeline", "ray.tune"} <= modules  # it did train there
    assert _driver_only(modules, DRIVER_ONLY) == []


def test_the_code_a_worker_runs_imports_no_driver_library():
    # In a fresh interpreter, as in a fresh worker: Ray Tune's own imports aside (see above).
    code = (
        "import json, sys\n"
        + "".join(f"import {name}\n" for name in WORKER_CODE)
        + "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout))
    assert set(WORKER_CODE) <= modules
    assert _driver_only(modules, DRIVER_ONLY + RAY_TUNE_IMPORTS) == []
