"""`hpo.tune(train_fn, ...)`: search the hyperparameters of your own training function."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpo.trainable.user_function import function_name

if TYPE_CHECKING:
    from hpo.results import Experiment


def tune(
    train_fn: Callable[[dict[str, Any]], Any],
    *,
    space: Mapping[str, Any],
    metric: str,
    mode: str = "min",
    config: Mapping[str, Any] | None = None,
    name: str | None = None,
    searcher: str | Mapping[str, Any] = "random",
    scheduler: str | Mapping[str, Any] = "fifo",
    num_samples: int | None = None,
    max_concurrent: int | None = None,
    time_budget_s: float | None = None,
    fail_fast: int | None = None,
    resources: Mapping[str, float] | None = None,
    seed: int = 0,
    store: str | None = None,
    ray: Mapping[str, Any] | None = None,
    console: Any = None,
    callbacks: Sequence[Any] = (),
) -> Experiment:
    """Search the hyperparameters of your own training function.

    Args:
        train_fn: `train_fn(config)` trains one configuration, calling `hpo.report(metrics)`
            each epoch.
        space: dotted keys into `config` -> distributions, as in a spec's `space`.
        metric, mode: what to optimise, and which way.
        config: the base config every trial starts from (searched keys are set into it).
        name: the experiment's name (default: the function's name).
        searcher, scheduler: as in a spec (`"optuna"`, `{"name": "asha", "max_t": 20}`).
        num_samples, max_concurrent, time_budget_s, fail_fast: the budget (as in a spec).
        resources: per trial, e.g. `{"cpu": 1, "gpu": 0.5}`.
        seed: the experiment's seed (searcher and each trial's seeds derive from it).
        store: the results store (default as for `hpo run`).
        ray: an existing Ray cluster, as a spec's `ray` section
            (`{"address": "auto", "storage_path": "/shared/hpo-results"}`).

    Returns:
        The experiment, as `hpo.load` would give it.

    Raises:
        SpecError: the arguments do not make a valid search; nothing was started.
    """
    from hpo.runner._runner import execute
    from hpo.spec import load_spec
    from hpo.store import resolve_url

    budget = {
        "num_samples": num_samples,
        "max_concurrent": max_concurrent,
        "time_budget_s": time_budget_s,
        "fail_fast": fail_fast,
    }
    spec = load_spec(
        {
            "name": name or train_fn.__name__,
            "metric": metric,
            "mode": mode,
            "seed": seed,
            "trainable": function_name(train_fn),
            "config": dict(config or {}),
            "space": dict(space),
            "searcher": searcher,
            "scheduler": scheduler,
            "budget": {key: value for key, value in budget.items() if value is not None},
            "resources": dict(resources or {}),
            **({"store": store} if store else {}),
            **({"ray": dict(ray)} if ray else {}),
        }
    )
    return execute(
        spec,
        store_url=resolve_url(None, spec.store),
        console=console,
        callbacks=callbacks,
        function=train_fn,
    )

