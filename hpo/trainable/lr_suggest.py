"""What a learning-rate range test's curve suggests: two learning rates and a search range.

Pure numpy, on the curve's points (learning rates, losses), so that the logic is tested on
synthetic curves whose answer is known and the CLI shows a stored curve without torch.

The anchors' bugs shape it. The steepest descent of a raw or lightly smoothed curve lands on
an early spike (Lightning-AI/pytorch-lightning#1767) or on noise (#21141,
davidtvs/pytorch-lr-finder#106): here the losses are median-filtered (a spike of a few
steps vanishes), the gradient is averaged over a window (noise), the first steps are a
burn-in, and only the descent before the loss's minimum counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# A tenth of the curve is its burn-in: the bias-corrected average rests on few losses there.
_BURN_IN = 0.1
# A fall counts in the valley's run only when it is more than half the losses' noise: on a
# noisy plateau a run of tiny falls would otherwise stretch the valley back into it.
_TOLERANCE = 0.5
# Fewer points than this are no curve to read a slope from.
MIN_POINTS = 10


@dataclass(frozen=True)
class Suggestion:
    """A learning rate read off the curve, and the method that read it."""

    lr: float
    method: str
    detail: str


@dataclass(frozen=True)
class Suggestions:
    """Both suggestions and the proposed range `[low, high]` for `optimizer.lr` (log scale)."""

    steepest: Suggestion
    valley: Suggestion
    low: float
    high: float
    minimum_lr: float  # where the (filtered) loss is lowest: the range stays below it

    def range_line(self, key: str = "optimizer.lr") -> str:
        """The range as a line of a spec's `space:`, ready to paste."""
        return (
            f"{key}: {{type: float, low: {format_lr(self.low)}, "
            f"high: {format_lr(self.high)}, log: true}}"
        )


def smooth(losses: Sequence[float], beta: float) -> np.ndarray:
    """The bias-corrected exponential moving average of `losses` (fastai's and Lightning's).

    Without the correction the first values would lean towards 0, the average's start.
    """
    values = np.asarray(losses, dtype=float)
    out = np.empty_like(values)
    average = 0.0
    for i, loss in enumerate(values):
        average = beta * average + (1 - beta) * loss
        out[i] = average / (1 - beta ** (i + 1))
    return out


def steepest(lrs: Sequence[float], losses: Sequence[float]) -> Suggestion:
    """The learning rate where the loss falls fastest, per decade, after a burn-in.

    The losses are median-filtered (a spike of a few steps goes), the slope (loss per
    log10 of the rate) is averaged over a window of the same width (noise goes), the first
    tenth of the curve is skipped (the burn-in), and only points up to the loss's minimum
    count (after it the loss rises).

    Raises:
        ValueError: too few points, or the loss never falls after the burn-in.
    """
    x, y, end = _prepared(lrs, losses)
    start = _burn_in(len(y))
    if end - start < 2:
        raise ValueError(
            f"the loss is lowest at step {end + 1} of {len(y)}, within the burn-in: no "
            "descent to read; lower --min (start the ramp lower)"
        )
    slope = _moving_average(np.gradient(y, x), _window(len(y)))
    best = start + int(np.argmin(slope[start : end + 1]))
    if slope[best] >= 0:
        raise ValueError("the loss never falls over the range; raise --max or check the model")
    return Suggestion(
        float(lrs[best]),
        "steepest descent",
        f"the loss falls fastest here ({slope[best]:.3g} per decade), after a burn-in of "
        f"{start} steps, on median-filtered, averaged losses",
    )


def valley(lrs: Sequence[float], losses: Sequence[float]) -> Suggestion:
    """fastai's `valley`: the middle of the longest run of falling losses.

    The longest decreasing subsequence of the (median-filtered) losses spans the curve's
    valley; the suggestion sits half way along it (fastai's index: a third plus a sixth),
    past the plateau and before the minimum, where the rise begins.

    Raises:
        ValueError: too few points.
    """
    _, filtered, _ = _prepared(lrs, losses, averaged=False)
    start = _burn_in(len(filtered))
    y = filtered[start:]
    n = len(y)
    step = _TOLERANCE * _noise(np.asarray(losses, dtype=float))
    # lds[i]: the length of the longest decreasing subsequence ending at i (O(n^2), n ~ 100).
    lds = np.ones(n, dtype=int)
    max_start = max_end = 0
    for i in range(1, n):
        earlier = (y[:i] > y[i] + step) & (lds[:i] + 1 > lds[i])
        if earlier.any():
            lds[i] = int(lds[:i][earlier].max()) + 1
        if lds[i] > lds[max_end]:
            max_end, max_start = i, i - int(lds[i])
    sections = (max_end - max_start) / 3
    index = start + min(max(max_start + int(sections) + int(sections / 2), 0), n - 1)
    return Suggestion(
        float(lrs[index]),
        "valley (fastai)",
        f"half way along the longest falling stretch, steps {start + max_start + 1} to "
        f"{start + max_end + 1}, after a burn-in of {start} steps",
    )


def suggest(lrs: Sequence[float], losses: Sequence[float]) -> Suggestions:
    """Both suggestions and the search range they propose.

    The range: from a decade below the lower suggestion to three times the higher one,
    but no higher than where the loss is lowest (past it the loss climbs towards
    divergence), and at least a decade wide. A log-uniform search then spends most trials
    around the suggestions and none on rates that diverge. The bounds are rounded to one
    significant digit, to read and paste: outwards, unless that would cross the minimum.

    Raises:
        ValueError: too few points, or no descent to read (see `steepest`).
    """
    first, second = steepest(lrs, losses), valley(lrs, losses)
    *_, end = _prepared(lrs, losses)
    minimum_lr = float(lrs[end])
    small, large = sorted((first.lr, second.lr))
    high = min(3 * large, minimum_lr) if minimum_lr > large else large
    low = min(small / 10, high / 10)
    rounded = _round(high, math.ceil)
    if rounded > max(minimum_lr, large):  # rounding must not cross the minimum either
        rounded = _round(high, math.floor)
    return Suggestions(first, second, _round(low, math.floor), rounded, minimum_lr)


def format_lr(lr: float) -> str:
    """A learning rate as a spec writes it: `3e-4`, `0.01`, `1`."""
    if 1e-3 <= lr < 10:
        return f"{lr:.2g}"
    mantissa, exponent = f"{lr:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


# --- the parts ----------------------------------------------------------------------------


def _prepared(
    lrs: Sequence[float], losses: Sequence[float], *, averaged: bool = True
) -> tuple[np.ndarray, np.ndarray, int]:
    """log10 of the rates, the median-filtered losses, and the index of their minimum."""
    x = np.log10(np.asarray(lrs, dtype=float))
    raw = np.asarray(losses, dtype=float)
    if len(x) != len(raw):
        raise ValueError(f"{len(x)} learning rates but {len(raw)} losses")
    if len(raw) < MIN_POINTS or not np.isfinite(raw).all():
        raise ValueError(
            f"a curve needs at least {MIN_POINTS} finite points, got {int(np.isfinite(raw).sum())}"
            " of them; raise --steps or --max (the loss diverged too soon)"
        )
    if np.any(np.diff(x) <= 0):
        raise ValueError("the learning rates must increase step by step")
    # Centred filters, which do not lag as a moving average does: the median drops spikes,
    # the mean after it the noise.
    width = _window(len(raw))
    y = _median_filter(raw, width)
    if averaged:
        y = _moving_average(y, 2 * width - 1)
    return x, y, int(np.argmin(y))


def _noise(raw: np.ndarray) -> float:
    """The losses' noise: the median absolute deviation from their running median, as a
    standard deviation (1.4826 times it, for normal noise)."""
    return float(1.4826 * np.median(np.abs(raw - _median_filter(raw, _window(len(raw))))))


def _window(n: int) -> int:
    """An odd filter width: 5 points on a curve of 100, wider on longer curves."""
    return max(3, (n // 20) | 1)


def _burn_in(n: int) -> int:
    return max(2, int(n * _BURN_IN))


def _median_filter(values: np.ndarray, width: int) -> np.ndarray:
    """A running median; the ends see a window cut short (edge values repeated)."""
    half = width // 2
    padded = np.pad(values, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    half = width // 2
    padded = np.pad(values, half, mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def _round(value: float, direction: Callable[[float], int]) -> float:
    """`value` to one significant digit, rounded down (`math.floor`) or up (`math.ceil`)."""
    exponent = math.floor(math.log10(value))
    scale = 10.0**exponent
    # A hair towards the other way first, so that 3e-4 (2.9999... / 1e-4) stays 3e-4.
    nudge = 1e-9 if direction is math.floor else -1e-9
    digit = max(direction(value / scale * (1 + nudge)), 1)
    return float(f"{digit * scale:.1g}")
