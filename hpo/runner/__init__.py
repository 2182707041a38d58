"""Running a search: the entry points (`run`, `resume`, `tune`), Ray Tune's Tuner, the cluster
it runs on, Ray's quieting, and Ctrl-C."""

from hpo.runner._runner import execute, resume, run
from hpo.runner._tune import tune

__all__ = ["execute", "resume", "run", "tune"]
