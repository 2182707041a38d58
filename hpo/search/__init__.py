"""What to search and how: the space, the searchers, the trial schedulers.

- `_space`: distributions with inclusive bounds and `when:` conditions, translated for Ray and
  Optuna in one place;
- `_searchers`: grid, random and Optuna, each both its spec section and its Ray builder;
- `_schedulers`: FIFO, ASHA, Hyperband, the median rule and PBT (Ray's; `_pbt` builds PBT);
- `_optuna_bridge`: stored trials as Optuna trials (export, importances, a resumed study).
"""

from hpo.search._optuna_bridge import (
    optuna_distributions,
    optuna_params,
    optuna_study,
    optuna_trial,
    quiet_optuna,
)
from hpo.search._schedulers import (
    PBT_MUTABLE_PREFIXES,
    SCHEDULERS,
    UNBOUNDED_T,
    AshaScheduler,
    FifoScheduler,
    HyperbandScheduler,
    MedianScheduler,
    PbtScheduler,
    SchedulerSpec,
    milestones,
)
from hpo.search._searchers import (
    SAMPLERS,
    SEARCHERS,
    GridSearcher,
    OptunaSearcher,
    RandomSearcher,
    SearcherSpec,
)
from hpo.search._space import (
    CategoricalDist,
    ConstantDist,
    Distribution,
    FloatDist,
    IntDist,
    Space,
    get_path,
    nest,
    optuna_name,
    set_path,
)

__all__ = [
    "PBT_MUTABLE_PREFIXES",
    "SAMPLERS",
    "SCHEDULERS",
    "SEARCHERS",
    "UNBOUNDED_T",
    "AshaScheduler",
    "CategoricalDist",
    "ConstantDist",
    "Distribution",
    "FifoScheduler",
    "FloatDist",
    "GridSearcher",
    "HyperbandScheduler",
    "IntDist",
    "MedianScheduler",
    "OptunaSearcher",
    "PbtScheduler",
    "RandomSearcher",
    "SchedulerSpec",
    "SearcherSpec",
    "Space",
    "get_path",
    "milestones",
    "nest",
    "optuna_distributions",
    "optuna_name",
    "optuna_params",
    "optuna_study",
    "optuna_trial",
    "quiet_optuna",
    "set_path",
]
