"""The range test's suggestions on synthetic curves whose right answer is known.

The curve: a plateau, a cosine-shaped fall between two rates (steepest half way, in log
space, which is also the middle of the valley), then a rise. Noise and early spikes are
what fooled the anchors' steepest descent (Lightning-AI/pytorch-lightning#1767, #21141,
davidtvs/pytorch-lr-finder#106).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpo.trainable.lr_suggest import format_lr, smooth, steepest, suggest, valley

FALL = (-4.0, -1.5)  # log10 of the rates where the loss starts and stops falling
TRUTH = 10 ** (sum(FALL) / 2)


def curve(*, noise: float = 0.0, spike_at: int | None = None, seed: int = 0, n: int = 100):
    x = np.linspace(-7, 1, n)
    a, b = FALL
    y = np.full(n, 2.3)
    falling = (x >= a) & (x <= b)
    y[falling] = 2.3 - 2.0 * (1 - np.cos(np.pi * (x[falling] - a) / (b - a))) / 2
    rising = x > b
    y[rising] = 0.3 + 3 * (x[rising] - b) ** 2
    y = y * (1 + noise * np.random.default_rng(seed).standard_normal(n))
    if spike_at is not None:
        y[spike_at : spike_at + 2] = [9.0, 7.0]
    return 10**x, y


def factor(lr: float) -> float:
    return max(lr / TRUTH, TRUTH / lr)


@pytest.mark.parametrize("method", [steepest, valley])
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    ("noise", "spike_at"),
    [(0.0, None), (0.05, None), (0.05, 2), (0.05, 20), (0.1, 3)],
    ids=["clean", "noisy", "noisy, spike in the burn-in", "noisy, spike after it", "very noisy"],
)
def test_a_suggestion_lands_within_3x_of_the_known_answer(method, seed, noise, spike_at):
    lrs, losses = curve(noise=noise, spike_at=spike_at, seed=seed)
    suggestion = method(lrs, losses)
    assert factor(suggestion.lr) <= 3, (suggestion, TRUTH)


def test_the_plain_steepest_gradient_is_fooled_where_ours_is_not():
    """The test above can fail: the anchors' argmin of the raw gradient lands on the spike."""
    lrs, losses = curve(noise=0.05, spike_at=20)
    naive = lrs[int(np.argmin(np.gradient(losses, np.log10(lrs))))]
    assert factor(naive) > 10
    assert factor(steepest(lrs, losses).lr) <= 3


def test_the_range_spans_the_suggestions_and_stays_below_the_minimum():
    lrs, losses = curve(noise=0.05, seed=1)
    found = suggest(lrs, losses)
    assert found.low <= min(found.steepest.lr, found.valley.lr) / 5
    assert max(found.steepest.lr, found.valley.lr) <= found.high <= found.minimum_lr * 1.5
    assert found.high / found.low >= 10
    assert 10**FALL[1] / 3 <= found.minimum_lr <= 10**FALL[1] * 3
    assert found.range_line() == (
        f"optimizer.lr: {{type: float, low: {format_lr(found.low)}, "
        f"high: {format_lr(found.high)}, log: true}}"
    )


def test_a_curve_that_never_falls_gets_no_suggestion():
    lrs = np.logspace(-7, 1, 50)
    with pytest.raises(ValueError, match="within the burn-in"):
        steepest(lrs, np.linspace(1.0, 5.0, 50))
    with pytest.raises(ValueError, match="at least 10 finite points"):
        suggest(lrs[:5], np.ones(5))


def test_smooth_is_the_bias_corrected_moving_average():
    values = smooth([2.0, 2.0, 2.0], 0.98)
    assert values == pytest.approx([2.0, 2.0, 2.0])  # no lean towards 0 at the start
    assert smooth([1.0, 3.0], 0.5)[1] == pytest.approx((0.25 + 1.5) / 0.75)


@pytest.mark.parametrize(
    ("lr", "text"), [(3e-4, "3e-4"), (0.02, "0.02"), (1.0, "1"), (1.5e-5, "1.5e-5"), (20, "2e1")]
)
def test_format_lr_writes_what_a_spec_reads_back(lr, text):
    assert format_lr(lr) == text
    assert math.isclose(float(text), lr)
