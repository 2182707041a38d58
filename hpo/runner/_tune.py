"""`hpo.tune(train_fn, ...)`: search the hyperparameters of your own training function."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoDeprecationWarning
from hpo.trainable.user_function import function_name

if TYPE_CHECKING:
    from hpo.results import Experiment
    from hpo.spec import Spec
    from hpo.trainable.pipeline import Pipeline

# Keyword arguments of hpo.tune before it took spec keys: their new, dotted names. (The other
# old keywords, `space`, `metric`, `mode`, `config`, `name`, `searcher`, `scheduler`, `seed`,
# `store`, `ray` and `resources`, were top-level spec keys already and keep their names.)
_RENAMED = {
    "num_samples": "budget.num_samples",
    "max_concurrent": "budget.max_concurrent",
    "time_budget_s": "budget.time_budget_s",
    "fail_fast": "budget.fail_fast",
}
# The old keywords whose default was None, meaning "not given".
_OLD_KEYWORDS = {
    *_RENAMED,
    *("space", "metric", "mode", "config", "name", "searcher", "scheduler", "seed"),
    *("store", "ray", "resources"),
}


def tune(
    train_fn: Callable[[dict[str, Any]], Any] | type[Pipeline],
    spec_or_dict: str | Path | Mapping[str, Any] | Spec | None = None,
    *,
    console: Any = None,
    callbacks: Sequence[Any] = (),
    **overrides: Any,
) -> Experiment:
    """Search the hyperparameters of your own training function, or your own `Pipeline`.

    Args:
        train_fn: `train_fn(config)` trains one configuration, calling `hpo.report(metrics)`
            each epoch; or a subclass of `hpo.Pipeline`, which hpo's loop trains with the
            spec's sections (`data`, `model`, `training`, ...) as its config. It stands for the
            spec's `trainable`.
        spec_or_dict: a spec file, a spec as a dict, or a loaded `Spec` (default: an empty
            spec); its name defaults to the function's name.
        console: where progress goes (default: stdout).
        callbacks: extra Ray Tune callbacks, called beside hpo's own.
        **overrides: spec keys to set, dotted or with `__` for the dots, as for `hpo.run`:
            `space={...}`, `metric="loss"`, `mode="max"`, `config={...}` (the base config
            every trial starts from), `searcher="optuna"`, `budget__num_samples=20`,
            `resources={"cpu": 1, "gpu": 0.5}`, `store="sqlite:///x.db"`.

    Returns:
        The experiment, as `hpo.load` would give it.

    Raises:
        SpecError: the arguments do not make a valid search; nothing was started.
        RunFailed: no trial finished without an error.
    """
    from hpo.runner._runner import execute
    from hpo.spec import Spec, load_spec
    from hpo.store import resolve_url

    if spec_or_dict is None:
        source: str | Path | dict[str, Any] = {}
    elif isinstance(spec_or_dict, Spec):
        source = spec_or_dict.model_dump(mode="json", exclude_unset=True)
    elif isinstance(spec_or_dict, Mapping):
        source = dict(spec_or_dict)
    else:
        source = spec_or_dict  # a file: its name defaults to the file's, as for `hpo run`
    if isinstance(source, dict):
        source.setdefault("name", train_fn.__name__)
    keys = {"trainable": function_name(train_fn), **_dotted(overrides)}
    spec = load_spec(source, keys)
    return execute(
        spec,
        store_url=resolve_url(None, spec.store),
        console=console,
        callbacks=callbacks,
        function=train_fn,
    )


def _dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides as dotted spec keys; the old keywords mapped to theirs, with a warning."""
    dotted = {}
    for key, value in overrides.items():
        if key in _OLD_KEYWORDS and value is None:
            continue  # an old keyword left at its default
        if key in _RENAMED:
            new = _RENAMED[key].replace(".", "__")
            warnings.warn(
                f"hpo.tune({key}=...) is deprecated and goes in the next release; "
                f"use hpo.tune(..., {new}=...), the spec's key {_RENAMED[key]}",
                HpoDeprecationWarning,
                stacklevel=3,
            )
            key = _RENAMED[key]
        dotted[key.replace("__", ".")] = value
    return dotted
