"""Checks of what a spec names in the results store, made once the store is known (the
spec alone does not say which store a run uses: `--store` and `$HPO_STORE` may)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.errors import SpecError
from hpo.search._prior import warm_start_problems
from hpo.spec._spec import Spec

if TYPE_CHECKING:
    from hpo.resuming import Prior


def check_stored(spec: Spec, store_url: str) -> None:
    """Raise a `SpecError` at the key and line of each experiment that `warm_start.from`
    names and the store at `store_url` does not have (with the names it has)."""
    issues = spec.issues_at(warm_start_problems(spec.warm_start, store_url))
    if issues:
        raise SpecError(spec.name, issues)


def gather(spec: Spec, store_url: str) -> Prior:
    """What the spec's `warm_start` and `enqueue` give its searcher (see `hpo.search._prior`)."""
    from hpo.resuming import Prior
    from hpo.search._prior import gather_prior

    if spec.warm_start is None and not spec.enqueue:
        return Prior()
    from hpo.store import Store

    store = Store(store_url, create=False) if spec.warm_start is not None else None
    return gather_prior(
        store,
        spec.warm_start,
        spec.enqueue,
        spec.search_space(),
        spec.metric,
        spec.mode,
    )
