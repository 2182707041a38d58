"""Analysis of what the store holds: trial tables as pandas, export, and the report."""

from typing import Any

from hpo.results._evaluation import Evaluation
from hpo.results._experiment import Experiment, compare, experiments, load, select
from hpo.results._export import to_file, to_optuna

# The report's functions import matplotlib (about 0.2 s and 20 MB): only on first use, so
# that a search's driver, which needs `Experiment` and never a figure, goes without it.
_REPORT = ("figures", "write_html", "write_png")


def __getattr__(name: str) -> Any:
    if name in _REPORT:
        from hpo.results import _report

        return getattr(_report, name)
    raise AttributeError(f"module 'hpo.results' has no attribute {name!r}")


__all__ = [
    "Evaluation",
    "Experiment",
    "compare",
    "experiments",
    "figures",
    "load",
    "select",
    "to_file",
    "to_optuna",
    "write_html",
    "write_png",
]
