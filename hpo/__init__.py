"""hpo: hyperparameter search for PyTorch, from one YAML spec, on Ray Tune, into one store."""

from hpo.analysis import Experiment, experiments, load
from hpo.errors import HpoError, RunFailed, SpecError
from hpo.runner import run
from hpo.spec import Spec, load_spec

__all__ = [
    "Experiment",
    "HpoError",
    "RunFailed",
    "Spec",
    "SpecError",
    "experiments",
    "load",
    "load_spec",
    "run",
]
__version__ = "0.1.0"
