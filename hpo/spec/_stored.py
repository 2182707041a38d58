"""Checks of what a spec names in the results store, made once the store is known (the
spec alone does not say which store a run uses: `--store` and `$HPO_STORE` may)."""

from __future__ import annotations

from hpo.errors import SpecError
from hpo.search._prior import warm_start_problems
from hpo.spec._spec import Spec


def check_stored(spec: Spec, store_url: str) -> None:
    """Raise a `SpecError` at the key and line of each experiment that `warm_start.from`
    names and the store at `store_url` does not have (with the names it has)."""
    issues = spec.issues_at(warm_start_problems(spec.warm_start, store_url))
    if issues:
        raise SpecError(spec.name, issues)
