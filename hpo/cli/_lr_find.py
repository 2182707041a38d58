"""`hpo lr-find`: the range test on a spec's base config, its curve, suggestions and range.

Imported only when the command runs: it imports torch, which `hpo --help` must not.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from hpo.errors import UsageError

if TYPE_CHECKING:
    from hpo.spec import Spec
    from hpo.trainable.lr_find import LRFindResult
    from hpo.trainable.lr_suggest import Suggestions

_PLOT_SUFFIXES = (".svg", ".png")
_WIDTH, _HEIGHT = 72, 18


def run_lr_find(
    spec: Spec,
    console: Console,
    *,
    min_lr: float,
    max_lr: float,
    steps: int,
    plot_path: Path | None,
    as_json: bool,
) -> None:
    """Run the test as a trial of `spec` would train, and print (or plot) what it found.

    Raises:
        UsageError: the spec's trainable is a function, the ramp or the plot's file name
            is wrong, or the curve gives no suggestion.
    """
    if min_lr >= max_lr:
        raise UsageError(f"--min must be below --max, but got (--min {min_lr}, --max {max_lr})")
    if plot_path is not None and plot_path.suffix.lower() not in _PLOT_SUFFIXES:
        raise UsageError(f"--plot writes .svg or .png files, got {plot_path.name!r}")
    pipeline = _pipeline_class(spec)

    import torch

    from hpo.trainable.lr_find import find_lr
    from hpo.trainable.preflight import load_data

    data_here = pipeline.setup_data is _base_setup_data()
    from hpo.trainable.data import loaded_in_driver

    dataset = load_data(spec) if data_here and loaded_in_driver(spec.data) else None
    # As a trial's process gets from Ray: as many threads as the trial has CPUs. More
    # threads than cores slow small models down many times over.
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, math.floor(spec.resources.cpu)))
    try:
        result = find_lr(
            spec.base_config(),
            pipeline=pipeline,
            dataset=dataset,
            min_lr=min_lr,
            max_lr=max_lr,
            steps=steps,
        )
    finally:
        torch.set_num_threads(threads)
    try:
        suggestions: Suggestions | None = result.suggestions()
        problem = ""
    except ValueError as exc:
        suggestions, problem = None, str(exc)
    if plot_path is not None:
        _write_plot(result, suggestions, plot_path)
    if as_json:
        click.echo(json.dumps(_as_json(result, suggestions, problem), indent=2))
    else:
        _print(console, spec, result, suggestions, problem, plot_path)
    if suggestions is None:
        raise UsageError(f"no suggestion from this curve: {problem}")


def _pipeline_class(spec: Spec) -> Any:
    """The Pipeline a trial of `spec` runs: hpo's own, or the user's subclass."""
    from hpo.trainable.preflight import check_user_code

    named = check_user_code(spec)
    if named is None:
        from hpo.trainable.pipeline import Pipeline

        return Pipeline
    if not spec.is_pipeline:
        raise UsageError(
            f"lr-find trains through hpo's Pipeline, but trainable {spec.trainable!r} is a "
            "function, whose training loop hpo cannot step: make it a subclass of "
            "hpo.Pipeline, or run a range test inside the function"
        )
    return named


def _base_setup_data() -> Any:
    from hpo.trainable.pipeline import Pipeline

    return Pipeline.setup_data


def _print(
    console: Console,
    spec: Spec,
    result: LRFindResult,
    suggestions: Suggestions | None,
    problem: str,
    plot_path: Path | None,
) -> None:
    from hpo.trainable.lr_suggest import format_lr

    console.print(_terminal_plot(result, suggestions), markup=False, highlight=False)
    stop = {
        "diverged": "the smoothed loss passed 4x its best",
        "nan": "the loss became NaN",
        "max_lr": "the ramp reached --max",
    }[result.stopped]
    console.print(
        f"{spec.name}: {len(result.lrs)} steps from {format_lr(result.lrs[0])} to "
        f"{format_lr(result.stop_lr)} in {result.seconds:.1f} s; stopped: {stop}",
        highlight=False,
    )
    if suggestions is None:
        console.print(f"[red]no suggestion:[/] {problem}", highlight=False)
        return
    for suggestion in (suggestions.steepest, suggestions.valley):
        console.print(
            f"  {suggestion.method + ':':<18} lr = {format_lr(suggestion.lr):<7} "
            f"[dim]{suggestion.detail}[/]",
            highlight=False,
        )
    console.print("The search range they propose, to paste into the spec's `space:`:")
    console.print(f"  {suggestions.range_line()}", markup=False, highlight=False)
    if plot_path is not None:
        console.print(f"Wrote {plot_path}", highlight=False)


def _terminal_plot(result: LRFindResult, suggestions: Suggestions | None) -> str:
    """The curve drawn with plotext: each step's loss (dots) and the smoothed loss (a line)
    against the rate on a log axis; `s` and `v` mark the suggestions."""
    import plotext as plt

    plt.clear_figure()
    plt.theme("clear")
    plt.plotsize(_WIDTH, _HEIGHT)
    # Log ticks by hand: plotext's log axis labels say 10^x, which reads less well.
    x = [math.log10(lr) for lr in result.lrs]
    plt.scatter(x, result.losses, marker="dot", label="loss")
    plt.plot(x, result.smoothed, marker="braille", label="smoothed")
    low, top = _loss_axis(result)
    if suggestions is not None:
        for suggestion, mark in ((suggestions.steepest, "s"), (suggestions.valley, "v")):
            plt.vline(math.log10(suggestion.lr))
            plt.text(mark, math.log10(suggestion.lr), low + 0.97 * (top - low))
    ticks = list(range(math.ceil(x[0]), math.floor(x[-1]) + 1))
    plt.xticks(ticks, [f"1e{t}" for t in ticks])
    plt.xlabel("learning rate")
    plt.ylabel("loss")
    # The loss past the divergence point would flatten the rest: clip the axis above the start.
    plt.ylim(low, top)
    # The clear theme still ends each line with a colour reset: plain text is what a log keeps.
    return plt.uncolorize(plt.build())


def _loss_axis(result: LRFindResult) -> tuple[float, float]:
    """The loss axis: from the lowest loss to half as much again as the start's, so that the
    blow-up past the divergence point does not flatten the rest of the curve."""
    start = sorted(result.losses[:10])[len(result.losses[:10]) // 2]  # the median: no spike
    low = min(min(result.losses), min(result.smoothed))
    top = max(1.5 * start, low + 1e-6)
    return max(0.0, low - 0.05 * (top - low)), top


def _write_plot(result: LRFindResult, suggestions: Suggestions | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    axes.plot(result.lrs, result.losses, ".", alpha=0.35, label="loss")
    axes.plot(result.lrs, result.smoothed, label="smoothed loss")
    if suggestions is not None:
        for suggestion, color in ((suggestions.steepest, "C2"), (suggestions.valley, "C3")):
            axes.axvline(suggestion.lr, color=color, linestyle="--", label=suggestion.method)
        axes.axvspan(suggestions.low, suggestions.high, color="C0", alpha=0.08, label="range")
    axes.set_xscale("log")
    axes.set_ylim(*_loss_axis(result))
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def _as_json(result: LRFindResult, suggestions: Suggestions | None, problem: str) -> dict[str, Any]:
    points = [
        {"lr": lr, "loss": loss, "smoothed": smoothed}
        for lr, loss, smoothed in zip(result.lrs, result.losses, result.smoothed, strict=True)
    ]
    out: dict[str, Any] = {
        "points": points,
        "stopped": result.stopped,
        "stop_lr": result.stop_lr,
        "seconds": result.seconds,
        "suggestions": None,
        "range": None,
        "problem": problem or None,
    }
    if suggestions is not None:
        out["suggestions"] = {
            name: {"lr": s.lr, "method": s.method, "detail": s.detail}
            for name, s in (("steepest", suggestions.steepest), ("valley", suggestions.valley))
        }
        out["range"] = {
            "optimizer.lr": {
                "type": "float",
                "low": suggestions.low,
                "high": suggestions.high,
                "log": True,
            },
            "line": suggestions.range_line(),
        }
    return out
