"""scikit-learn's `train_test_split` (shuffled, optionally stratified), in numpy alone.

A trial splits its data itself, and importing scikit-learn there costs every fresh worker
about a second and 60 MB. This draws the same splits as scikit-learn 1.x does for an int
seed (the same calls on a `RandomState`, in the same order), so experiments split as they
always did; `tests/trainable/test_split_and_metrics.py` checks it against scikit-learn.
"""

from __future__ import annotations

from math import ceil

import numpy as np


def train_test_split(
    x: np.ndarray, y: np.ndarray, test_size: float, seed: int, *, stratify: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`(x_train, x_test, y_train, y_test)` with a `test_size` share of the samples in test,
    keeping each class's share in both parts when `stratify`.

    Raises:
        ValueError: a part would be empty, or (stratified) a class has fewer than 2 samples
            or there are more classes than samples in a part.
    """
    n_samples = len(y)
    n_test = ceil(test_size * n_samples)
    n_train = n_samples - n_test
    if n_train <= 0 or n_test <= 0:
        raise ValueError(
            f"with {n_samples} samples and a share of {test_size}, a part of the split would "
            "be empty; use more data or another share"
        )
    rng = np.random.RandomState(seed)
    if stratify:
        train, test = _stratified(y, n_train, n_test, rng)
    else:
        permutation = rng.permutation(n_samples)
        test, train = permutation[:n_test], permutation[n_test:]
    return x[train], x[test], y[train], y[test]


def _stratified(
    y: np.ndarray, n_train: int, n_test: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's `StratifiedShuffleSplit`, one split."""
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    if class_counts.min() < 2:
        few = classes[class_counts < 2].tolist()
        raise ValueError(
            f"a stratified split needs at least 2 samples of each class, but classes {few} have 1"
        )
    if min(n_train, n_test) < len(classes):
        raise ValueError(
            f"a stratified split of {len(classes)} classes needs at least as many samples in "
            f"each part, but gets {n_train} and {n_test}"
        )
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i in range(len(classes)):
        permutation = rng.permutation(class_counts[i])
        indices = class_indices[i].take(permutation, mode="clip")
        train.extend(indices[: n_i[i]])
        test.extend(indices[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(
    class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState
) -> np.ndarray:
    """How many of `n_draws` each class gets: its share rounded down, the rest to the largest
    remainders, ties broken at random (scikit-learn's `_approximate_mode`)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)
