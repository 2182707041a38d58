"""hpo: hyperparameter search for PyTorch, from one YAML spec, on Ray Tune, into one store."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpo.analysis import Experiment, compare, experiments, load
    from hpo.custom import get_checkpoint, report, tune
    from hpo.errors import HpoError, RunFailed, RunInterrupted, SpecError
    from hpo.runner import resume, run
    from hpo.spec import Spec, load_spec

# Public name -> the module that defines it. Imported on first use, so that `hpo --help` and
# `hpo validate` do not pay for pandas, torch or Ray.
_EXPORTS = {
    "Experiment": "hpo.analysis",
    "compare": "hpo.analysis",
    "experiments": "hpo.analysis",
    "load": "hpo.analysis",
    "HpoError": "hpo.errors",
    "RunFailed": "hpo.errors",
    "RunInterrupted": "hpo.errors",
    "SpecError": "hpo.errors",
    "run": "hpo.runner",
    "resume": "hpo.runner",
    "tune": "hpo.custom",
    "report": "hpo.custom",
    "get_checkpoint": "hpo.custom",
    "Spec": "hpo.spec",
    "load_spec": "hpo.spec",
}
__all__ = [
    "Experiment",
    "HpoError",
    "RunFailed",
    "RunInterrupted",
    "Spec",
    "SpecError",
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
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
