"""hpo: hyperparameter search for PyTorch, from one YAML spec, on Ray Tune, into one store."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpo.errors import HpoError, RunFailed, RunInterrupted, SpecError
    from hpo.results import Experiment, compare, experiments, load
    from hpo.runner import resume, run, tune
    from hpo.spec import Spec, check, load_spec
    from hpo.trainable.pipeline import Pipeline
    from hpo.trainable.user_function import get_checkpoint, report

    __version__: str  # read from the installed metadata on first use (see `__getattr__`)

# Public name -> the module that defines it. Imported on first use, so that `hpo --help` and
# `hpo validate` do not pay for pandas, torch or Ray.
_EXPORTS = {
    "Experiment": "hpo.results",
    "compare": "hpo.results",
    "experiments": "hpo.results",
    "load": "hpo.results",
    "HpoError": "hpo.errors",
    "RunFailed": "hpo.errors",
    "RunInterrupted": "hpo.errors",
    "SpecError": "hpo.errors",
    "run": "hpo.runner",
    "resume": "hpo.runner",
    "tune": "hpo.runner",
    "Pipeline": "hpo.trainable.pipeline",
    "report": "hpo.trainable.user_function",
    "get_checkpoint": "hpo.trainable.user_function",
    "Spec": "hpo.spec",
    "load_spec": "hpo.spec",
    "check": "hpo.spec",
}
__all__ = [
    "Experiment",
    "HpoError",
    "Pipeline",
    "RunFailed",
    "RunInterrupted",
    "Spec",
    "SpecError",
    "check",
    "compare",
    "experiments",
    "get_checkpoint",
    "load",
    "load_spec",
    "report",
    "resume",
    "run",
    "tune",
]
DISTRIBUTION = "hpo-orchestra"  # the name hpo is installed under (`pip install hpo-orchestra`)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        # Kept, so the next `hpo.report(...)` (many a second in a trial) is a plain lookup.
        globals()[name] = value
        return value
    if name == "__version__":
        # From the installed package's metadata, so that it is the version pyproject.toml
        # gave the build, not a second copy kept by hand.
        from importlib import metadata

        try:
            return metadata.version(DISTRIBUTION)
        except metadata.PackageNotFoundError:  # imported from a checkout that is not installed
            return "0+unknown"
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
