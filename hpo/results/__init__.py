"""Analysis of what the store holds: trial tables as pandas, export, and the report."""

from hpo.results._evaluation import Evaluation
from hpo.results._experiment import Experiment, compare, experiments, load, select
from hpo.results._export import to_file, to_optuna
from hpo.results._report import figures, write_html, write_png

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
