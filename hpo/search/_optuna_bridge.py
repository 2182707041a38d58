"""Stored trials as Optuna trials: the one translation, for export, importances and resume.

A stored trial becomes a finished Optuna trial with its state, its final value of the spec's
metric, its searched params with their distributions (constants and inactive conditional
params are not Optuna's), and its metric by iteration as intermediate values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import TypeAdapter

from hpo.search._space import Dist, Distribution, optuna_name
from hpo.types import Mode, TrialStatus


def optuna_distributions(space: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna's distribution of each searched key of `space` (its `Distribution`s, or the raw
    `space:` section of a stored spec), by dotted key; constants are not searched."""
    parse = TypeAdapter(Distribution).validate_python
    dists = {
        key: (raw if isinstance(raw, Dist) else parse(raw)).to_optuna()
        for key, raw in space.items()
    }
    return {key: dist for key, dist in dists.items() if dist is not None}


def optuna_params(
    params: Mapping[str, Any], distributions: Mapping[str, Any], *, optuna_names: bool = False
) -> dict[str, Any]:
    """The searched ones of a stored trial's `params` (those with a distribution), by dotted
    key or, with `optuna_names`, as Ray's OptunaSearch suggests them (`optuna_name`)."""
    name = optuna_name if optuna_names else str
    return {name(key): value for key, value in params.items() if key in distributions}


def optuna_trial(
    status: TrialStatus | str,
    value: float | Sequence[float | None] | None,
    params: Mapping[str, Any],
    distributions: Mapping[str, Any],
    intermediate_values: Mapping[int, float] | None = None,
    *,
    pruned_as_complete: bool = False,
    optuna_names: bool = False,
    user_attrs: dict[str, Any] | None = None,
    constraints: Mapping[str, float] | None = None,
) -> Any:
    """A stored trial as a finished Optuna trial, or None for one that has not finished.

    COMPLETED is COMPLETE, PRUNED is PRUNED, ERROR is FAIL; a trial without a usable value of
    the metric (none, or NaN) is FAIL too.

    Args:
        params, distributions: by dotted key (`optuna_distributions`); the params without a
            distribution are left out (`optuna_params`).
        intermediate_values: the metric by iteration (NaN left out: Optuna cannot rank it).
        pruned_as_complete: a pruned trial as COMPLETE with its last value, as Ray's
            OptunaSearch tells its study of a trial that the scheduler stopped.
        optuna_names: name params as Ray's OptunaSearch suggests them, not by dotted key.
        value: the final value of the metric, or of each objective (a list) with several:
            a trial missing any of them is FAIL.
        constraints: the trial's constraint violations by constraint, as hpo's OptunaSearch
            sets them (`hpo.search._constrained`).
    """
    from optuna.trial import TrialState, create_trial

    status = TrialStatus(status)
    if not status.finished:
        return None
    if status is TrialStatus.PRUNED and not pruned_as_complete:
        state = TrialState.PRUNED
    elif status is TrialStatus.ERROR or not _usable(value):
        state = TrialState.FAIL
    else:
        state = TrialState.COMPLETE
    name = optuna_name if optuna_names else str
    several = isinstance(value, Sequence)
    complete = state == TrialState.COMPLETE
    told = constraints is not None and state in (TrialState.COMPLETE, TrialState.PRUNED)
    return create_trial(
        state=state,
        value=value if complete and not several else None,
        values=list(value) if complete and several else None,  # type: ignore[arg-type]
        constraints=dict(constraints) if told else None,  # type: ignore[arg-type]
        params=optuna_params(params, distributions, optuna_names=optuna_names),
        distributions={name(key): distributions[key] for key in params if key in distributions},
        intermediate_values={
            int(it): float(v) for it, v in (intermediate_values or {}).items() if v == v
        },
        user_attrs=user_attrs,
    )


def _usable(value: float | Sequence[float | None] | None) -> bool:
    values = value if isinstance(value, Sequence) else [value]
    return all(v is not None and not math.isnan(v) for v in values)


def optuna_study(mode: Mode | str, **options: Any) -> Any:
    """A new Optuna study that optimises in `mode`'s direction, without Optuna's log line."""
    import optuna

    with quiet_optuna():  # no "new study created" line
        return optuna.create_study(direction=Mode(mode).direction, **options)


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's log lines below warnings held back for the block, and its verbosity as it was
    afterwards: the store and the progress view report trials, and Optuna's "new study created"
    and "trial finished" lines would repeat them, but a user's own studies keep their lines."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
