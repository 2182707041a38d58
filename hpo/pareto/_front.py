"""The Pareto front: the trials that no other trial beats in every objective at once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hpo.types import Mode


def front_mask(values: Sequence[Sequence[float]], modes: Sequence[Mode]) -> list[bool]:
    """Which rows of `values` (one row per trial, one column per objective) are not dominated.

    A row dominates another when it is at least as good in every objective and better in one.
    Rows with a NaN are never on the front. Duplicates of a front row are all on it.
    """
    points = np.asarray(values, dtype=float).reshape(len(values), len(modes))
    # Higher is better in every column from here on.
    points = points * np.array([m.sign for m in modes], dtype=float)
    usable = ~np.isnan(points).any(axis=1)
    mask = usable.copy()
    candidates = points[usable]
    for i in np.flatnonzero(usable):
        p = points[i]
        at_least = (candidates >= p).all(axis=1)
        better = (candidates > p).any(axis=1)
        if (at_least & better).any():
            mask[i] = False
    return mask.tolist()


def ranked_front(
    values: Sequence[Sequence[float]], modes: Sequence[Mode], feasible: Sequence[bool]
) -> list[bool]:
    """The front that feasible trials come first in: the non-dominated feasible trials, or,
    when no trial is feasible, the non-dominated ones among all (so that a search whose
    constraints no trial met still shows its trade-off)."""
    feasible = list(feasible)
    if any(feasible):
        chosen = [v for v, f in zip(values, feasible, strict=True) if f]
        inner = iter(front_mask(chosen, modes))
        return [next(inner) if f else False for f in feasible]
    return front_mask(values, modes) if len(values) else []
