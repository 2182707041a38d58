"""Warm start: what earlier experiments in the store, and hand-picked configs, tell a search.

`warm_start: {from: [NAME, ...], best: K}` tells the searcher every finished trial of those
experiments whose params fit this space (`Space.fit`: a key this space does not search is
dropped; a trial with a value outside the new bounds, or without an active key, is left out
and counted), and proposes the K best of them first. `enqueue: [{key: value, ...}, ...]`
proposes hand-picked configs first (checked against the space when the spec is loaded).

Both become the search's first proposals (`hpo.resuming.Prior.first`), numbered 0, 1, ...,
which is what keeps a resumed run from proposing them twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field

from hpo._options import Options
from hpo.resuming import FinishedTrial, Prior
from hpo.search._space import Space, config_key
from hpo.types import Mode, TrialStatus

if TYPE_CHECKING:
    from hpo.store import Store


class WarmStartOptions(Options):
    """Start from the trials of earlier experiments in the store."""

    # `from` is the key (a Python keyword, so the field is `from_`), also when dumped.
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: list[str] = Field(
        alias="from", min_length=1, description="names of experiments in the store"
    )
    best: int = Field(0, ge=0, description="also run the K best configs of those first")


def gather_prior(
    store: Store | None,
    options: WarmStartOptions | None,
    enqueue: Sequence[Mapping[str, Any]],
    space: Space,
    metric: str,
    mode: Mode,
) -> Prior:
    """The trials and first configs that `options` and `enqueue` give a search of `space`.

    A trial's value is its last reported `metric` (the experiment's own metric may be
    another); repeats and trials without that metric are not told. `store` is read only for
    a `warm_start` (hand-picked configs alone need none).
    """
    notes: list[str] = []
    first: list[dict[str, Any]] = []
    seen: set[str] = set()

    def propose(params: dict[str, Any]) -> None:
        key = config_key(params)
        if key not in seen:
            seen.add(key)
            first.append(params)

    for params in enqueue:
        fitted = space.fit(params)
        if fitted is not None:  # the spec's check reported those that are not
            propose(fitted)
    if enqueue:
        notes.append(f"enqueued {len(first)} hand-picked configs")
    told: list[FinishedTrial] = []
    if options is not None and store is not None:
        for name in options.from_:
            trials, total = _fitting_trials(store, name, space, metric)
            told += trials
            outside = total - len(trials)
            notes.append(
                f"told {len(trials)} of {total} trials of {name}"
                + (f"; {outside} fell outside the space" if outside else "")
            )
        if options.best:
            before = len(first)
            for trial in _best(told, options.best, mode):
                propose(dict(trial.params))
            notes.append(
                f"enqueued the {len(first) - before} best configs of "
                f"{', '.join(options.from_)} ({options.best} asked)"
            )
    return Prior(told, first, notes)


def _fitting_trials(
    store: Store, name: str, space: Space, metric: str
) -> tuple[list[FinishedTrial], int]:
    """The finished trials of experiment `name` that fit `space`, and how many it has."""
    row = store.experiment(name)
    results: dict[str, dict[int, float]] = defaultdict(dict)
    for result in store.result_rows(row["id"]):
        if metric in result["metrics"]:
            results[result["trial_id"]][result["iteration"]] = result["metrics"][metric]
    finished = [
        trial
        for trial in store.trial_rows(
            row["id"], ["trial_id", "number", "status", "params", "repeat_of"]
        )
        if trial["status"] in (TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value)
        and trial["repeat_of"] is None
        and results.get(trial["trial_id"])
    ]
    fitting = []
    for trial in finished:
        params = space.fit(trial["params"])
        if params is None:
            continue
        values = results[trial["trial_id"]]
        fitting.append(
            FinishedTrial(
                f"{name}/{trial['trial_id']}",
                TrialStatus(trial["status"]),
                params,
                values[max(values)],
                values,
                trial["number"],
            )
        )
    return fitting, len(finished)


def _best(trials: list[FinishedTrial], k: int, mode: Mode) -> list[FinishedTrial]:
    """The `k` trials with the best value of the metric at any iteration, best first."""
    sign = 1 if mode is Mode.MIN else -1
    finite = [t for t in trials if any(v == v for v in t.values.values())]
    return sorted(finite, key=lambda t: min(sign * v for v in t.values.values() if v == v))[:k]


def warm_start_problems(
    options: WarmStartOptions | None, store_url: str
) -> list[tuple[tuple[str | int, ...], str]]:
    """What `warm_start` names that the store at `store_url` does not have, by spec key."""
    from hpo.errors import MissingStore
    from hpo.store import Store  # SQLAlchemy only where a spec names stored experiments

    if options is None:
        return []
    try:
        names = Store(store_url, create=False).experiment_names()
    except MissingStore:
        names = []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, name in enumerate(options.from_):
        if name not in names:
            known = f"it has: {', '.join(names)}" if names else "it has no experiments yet"
            problems.append(
                (
                    ("warm_start", "from", i),
                    f"no experiment {name!r} in the store {store_url}; {known}",
                )
            )
    return problems
