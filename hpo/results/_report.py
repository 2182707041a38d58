"""One self-contained HTML page that shows a search at a glance, and its figures as PNG files.

The figures are drawn with matplotlib and inlined as SVG. matplotlib is the long-kept default
of scientific Python: it renders without a display or a browser, SVG output needs no script
and fetches nothing (the page opens offline, and mails at tens of kB, where plotly would
embed megabytes of JavaScript), and the very same figures save as PNG for papers and slides.
Text stays text in the SVG (`svg.fonttype: none`), which keeps the files small.

Parameter importance is Optuna's (its default evaluator, which copes with conditional
parameters), on an in-memory study built by `hpo.results._export.to_optuna`.
"""

from __future__ import annotations

import html
import io
import re
import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml
from matplotlib import colormaps, rc_context
from matplotlib.figure import Figure

from hpo.errors import UsageError
from hpo.results._report_pareto import pareto_figures
from hpo.store import TrialStatus
from hpo.types import Mode

if TYPE_CHECKING:
    from hpo.results._evaluation import Evaluation
    from hpo.results._experiment import Experiment

TOP_TRIALS = 10

# Local style: nothing leaks into the user's own matplotlib settings.
_STYLE = {
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
}
_COLORS = {
    TrialStatus.COMPLETED.value: "#1f77b4",
    TrialStatus.PRUNED.value: "#9a9a9a",
    TrialStatus.ERROR.value: "#d62728",
    TrialStatus.RUNNING.value: "#2ca02c",
    TrialStatus.PENDING.value: "#bcbd22",
    TrialStatus.INTERRUPTED.value: "#ff7f0e",
}
_FINISHED = tuple(status.value for status in TrialStatus if status.succeeded)
_INACTIVE = -0.15  # where parallel coordinates put a parameter a trial did not use
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_GEOMETRY = re.compile(r'\b(?:d|x|y|transform)="[^"]*"')
_DECIMALS = re.compile(r"(\d\.\d\d)\d+")


class _Data:
    """What every figure reads: the trials, their curves, and how to read the metric."""

    def __init__(self, experiment: Experiment):
        self.experiment = experiment
        self.metric = experiment.metric
        self.maximize = experiment.mode is Mode.MAX
        self.trials = experiment.trials()
        self.evaluations = experiment.evaluations()
        self.history = experiment.history()
        self.value = f"best.{self.metric}"
        if self.value not in self.trials:
            self.trials[self.value] = np.nan
        finished = self.trials["status"].isin(_FINISHED) & self.trials[self.value].notna()
        self.finished = self.trials[finished].sort_values("number")
        self.space: dict[str, dict[str, Any]] = {
            key: raw
            for key, raw in (experiment.spec.get("space") or {}).items()
            if isinstance(raw, dict) and raw.get("type") in ("float", "int", "categorical")
        }
        columns = [c.removeprefix("params.") for c in self.trials if c.startswith("params.")]
        self.params = [p for p in self.space if p in columns] + [
            p for p in columns if p not in self.space
        ]

    def running_best(self, values: pd.Series) -> pd.Series:
        return values.cummax() if self.maximize else values.cummin()

    def is_log(self, param: str) -> bool:
        return bool(self.space.get(param, {}).get("log"))

    def categories(self, param: str) -> list[Any] | None:
        raw = self.space.get(param, {})
        if raw.get("type") == "categorical":
            return list(raw.get("choices", []))
        values = self.trials[f"params.{param}"].dropna()
        if len(values) and not all(isinstance(v, (int, float, bool)) for v in values):
            return sorted({str(v) for v in values})
        return None


# --- figures -----------------------------------------------------------------------------------


def _progress(data: _Data) -> Figure:
    fig = Figure(figsize=(8, 3))
    by_time, by_trial = fig.subplots(1, 2)
    trials = data.finished.dropna(subset=["ended_at"]).sort_values("ended_at")
    start = data.experiment.row["started_at"]
    minutes = (trials["ended_at"] - pd.Timestamp(start)).dt.total_seconds() / 60
    for ax, x, ordered, label in (
        (by_time, minutes, trials, "minutes since the start"),
        (by_trial, data.finished["number"], data.finished, "trial number"),
    ):
        for status in _FINISHED:
            mask = ordered["status"] == status
            ax.scatter(
                x[mask], ordered.loc[mask, data.value], s=14, color=_COLORS[status], label=status
            )
        ax.step(x, data.running_best(ordered[data.value]), where="post", color="black", lw=1.2)
        ax.set_xlabel(label)
    by_time.set_ylabel(f"best {data.metric}")
    by_time.set_title("best so far, over time", loc="left")
    by_trial.set_title("best so far, over trials", loc="left")
    by_trial.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def _axis_positions(data: _Data, param: str, values: pd.Series) -> tuple[pd.Series, list[str]]:
    """Values mapped to [0, 1] on a parameter's axis, and the labels of its bottom and top (or
    of each category)."""
    choices = data.categories(param)
    if choices is not None:
        index = {str(c): i for i, c in enumerate(choices)}
        span = max(len(choices) - 1, 1)
        mapped = values.map(lambda v: np.nan if pd.isna(v) else index.get(str(v), np.nan) / span)
        return mapped.astype(float), [str(c) for c in choices]
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    if data.is_log(param):
        numbers = np.log10(numbers.where(numbers > 0))
    if numbers.isna().all():  # a conditional parameter no finished trial used
        return numbers, []
    low, high = numbers.min(), numbers.max()
    span = (high - low) or 1.0
    shown = [low, high] if not data.is_log(param) else [10**low, 10**high]
    return (numbers - low) / span, [f"{v:.3g}" for v in shown]


def _parallel(data: _Data) -> Figure:
    axes = [*data.params, data.metric]
    fig = Figure(figsize=(max(6, 1.3 * len(axes)), 3.4))
    ax = fig.subplots()
    trials = data.finished
    columns, labels = [], []
    for param in data.params:
        mapped, names = _axis_positions(data, param, trials[f"params.{param}"])
        columns.append(mapped.to_numpy())
        labels.append(names)
    values = trials[data.value].astype(float)
    low, high = values.min(), values.max()
    columns.append(((values - low) / ((high - low) or 1.0)).to_numpy())
    labels.append([f"{low:.4g}", f"{high:.4g}"])
    ys = np.vstack(columns).T
    quality = columns[-1] if data.maximize else 1 - columns[-1]
    cmap = colormaps["viridis"]
    # Best trials drawn last, so they stay on top.
    inactive = np.isnan(ys)
    # A conditional parameter a trial did not use sits in a slot below its axis, so that the
    # trial's line stays whole.
    ys = np.where(inactive, _INACTIVE, ys)
    for row in np.argsort(quality):
        ax.plot(range(len(axes)), ys[row], color=cmap(quality[row]), alpha=0.8, lw=1.2)
    for i, names in enumerate(labels):
        ax.axvline(i, color="black", lw=0.8)
        positions = np.linspace(0, 1, len(names)) if len(names) > 2 else [0, 1]
        for position, name in zip(positions, names, strict=False):
            ax.text(i + 0.03, position, name, fontsize=7, va="center")
        if inactive[:, i].any():
            ax.text(i + 0.03, _INACTIVE, "(not used)", fontsize=7, va="center", color="gray")
    ax.set_xticks(range(len(axes)), axes, rotation=20, ha="right")
    ax.set_yticks([])
    ax.grid(False)
    ax.spines[["left", "bottom"]].set_visible(False)
    ax.set_xlim(-0.2, len(axes) - 0.4)
    ax.set_ylim(_INACTIVE - 0.05, 1.05)  # the axes are normalised, whatever few values there are
    ax.set_title(f"parameters against best {data.metric} (brighter is better)", loc="left")
    fig.tight_layout()
    return fig


def _importances(experiment: Experiment, data: _Data) -> dict[str, float]:
    """Optuna's parameter importances for the trial's best value (completed and pruned trials:
    the value the store ranks by), or an empty dict where they cannot be assessed."""
    import optuna

    from hpo.search import optuna_distributions, optuna_study, optuna_trial

    dists = optuna_distributions(experiment.spec.get("space", {}))
    best = dict(zip(data.finished["trial_id"], data.finished[data.value], strict=True))
    scored = [
        optuna_trial(TrialStatus.COMPLETED, float(best[row["trial_id"]]), row["params"], dists)
        for row in experiment.store.trial_rows(experiment.row["id"], ["trial_id", "params"])
        if row["trial_id"] in best
    ]
    scored = [trial for trial in scored if trial.params]  # nothing searched: nothing to rank
    if len(scored) < 2:
        return {}
    target = optuna_study(experiment.mode)
    target.add_trials(scored)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature and few-trials notices
            return optuna.importance.get_param_importances(target)
    except (ValueError, RuntimeError):
        return {}  # e.g. every trial has the same value


def _importance(experiment: Experiment, data: _Data) -> Figure | None:
    scores = _importances(experiment, data)
    if not scores:
        return None
    names = list(scores)[::-1]
    fig = Figure(figsize=(6, 0.4 * len(names) + 1.2))
    ax = fig.subplots()
    ax.barh(names, [scores[n] for n in names], color=_COLORS[TrialStatus.COMPLETED.value])
    ax.set_xlabel("importance (Optuna, sums to 1)")
    ax.set_title(f"which parameters mattered for {data.metric}", loc="left")
    fig.tight_layout()
    return fig


def _curves(data: _Data) -> Figure | None:
    history = data.history
    if data.metric not in history or history[data.metric].dropna().empty:
        return None
    fig = Figure(figsize=(8, 3.4))
    ax = fig.subplots()
    status = dict(zip(data.trials["trial_id"], data.trials["status"], strict=True))
    best = data.experiment.best(1)
    best_id = best.iloc[0]["trial_id"] if not best.empty else None
    seen: set[str] = set()
    for trial_id, rows in history.groupby("trial_id", sort=False):
        state = status.get(trial_id, TrialStatus.RUNNING.value)
        pruned = state == TrialStatus.PRUNED.value
        ax.plot(
            rows["iteration"],
            rows[data.metric],
            color=_COLORS.get(state, "black"),
            ls="--" if pruned else "-",
            lw=2.4 if trial_id == best_id else 1,
            alpha=0.6 if pruned else 0.9,
            marker="." if len(rows) == 1 else None,  # a one-epoch curve is a point
            # One legend entry per status: matplotlib hides labels that start with "_".
            label=state.lower() if state not in seen else "_",
        )
        if pruned:  # where the scheduler stopped it
            ax.plot(rows["iteration"].iloc[-1:], rows[data.metric].iloc[-1:], "x", color="black")
        seen.add(state)
    ax.set_xlabel("epoch")
    ax.set_ylabel(data.metric)
    ax.set_title("learning curves (pruned: dashed, stopped at x; best: thick)", loc="left")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def _slice(data: _Data, param: str) -> Figure | None:
    column = f"params.{param}"
    trials = data.finished.dropna(subset=[column])
    if trials.empty:
        return None
    fig = Figure(figsize=(4, 3))
    ax = fig.subplots()
    choices = data.categories(param)
    if choices is not None:
        index = {str(c): i for i, c in enumerate(choices)}
        x = trials[column].map(lambda v: index.get(str(v), np.nan))
        ax.set_xticks(range(len(choices)), [str(c) for c in choices])
    else:
        x = trials[column].astype(float)
        if data.is_log(param):
            ax.set_xscale("log")
    for status in _FINISHED:
        mask = trials["status"] == status
        ax.scatter(x[mask], trials.loc[mask, data.value], s=14, color=_COLORS[status])
    ax.set_xlabel(param)
    ax.set_ylabel(f"best {data.metric}")
    active = (
        f" (active in {len(trials)} of {len(data.finished)})"
        if len(trials) < len(data.finished)
        else ""
    )
    ax.set_title(f"{param}{active}", loc="left")
    fig.tight_layout()
    return fig


def _best_evaluation(data: _Data) -> Evaluation | None:
    """The best trial's evaluation on the test split, where one is stored."""
    best = data.experiment.best_number()
    found = [e for e in data.evaluations if e.trial == best and e.split == "test"]
    return found[0] if found else None


def _confusion(evaluation: Evaluation) -> Figure | None:
    """The confusion matrix as a heatmap, the class names on both axes and each count in its
    cell (the colour is the share of the true class, so rare classes read as well)."""
    confusion = evaluation.confusion
    if confusion.empty:
        return None
    counts = confusion.to_numpy()
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    k = len(confusion)
    side = min(9.0, max(3.5, 0.45 * k + 2))
    fig = Figure(figsize=(side + 1, side))
    ax = fig.subplots()
    ax.grid(False)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    names = [str(n) for n in confusion.index]
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 30:  # counts stay legible up to about this many classes
        for (i, j), count in np.ndenumerate(counts):
            color = "white" if shares[i, j] > 0.6 else "#222"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, label="share of the true class", shrink=0.8)
    ax.set_title(
        f"Confusion matrix: trial {evaluation.trial} on the test split", loc="left"
    )
    fig.tight_layout()
    return fig


def _predicted_against_true(evaluation: Evaluation) -> Figure | None:
    points = evaluation.points
    if points.empty:
        return None
    fig = Figure(figsize=(4.5, 4.2))
    ax = fig.subplots()
    ax.scatter(points["true"], points["predicted"], s=8, alpha=0.6, color=_COLORS["COMPLETED"])
    low = float(min(points["true"].min(), points["predicted"].min()))
    high = float(max(points["true"].max(), points["predicted"].max()))
    ax.plot([low, high], [low, high], color="#d62728", linewidth=1, label="predicted = true")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.legend(loc="upper left", frameon=False)
    rmse = evaluation.residuals.get("rmse", float("nan"))
    ax.set_title(
        f"Trial {evaluation.trial} on the test split (RMSE {rmse:.4g})", loc="left"
    )
    fig.tight_layout()
    return fig


def _memory(data: _Data) -> Figure | None:
    """Each trial's peak memory against its best value: what a trial needs of a device (to
    choose `resources.gpu` fractions), and what it bought; trials that ran out of memory are
    marked at their peak along the bottom."""
    measured = data.finished.dropna(subset=["peak_memory_mb"])
    failed = data.trials[
        (data.trials["error_type"] == "out_of_memory") & data.trials["peak_memory_mb"].notna()
    ]
    if measured.empty:
        return None
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    for status in _FINISHED:
        mask = measured["status"] == status
        if not mask.any():  # no legend entry for a status no trial has
            continue
        ax.scatter(
            measured.loc[mask, "peak_memory_mb"],
            measured.loc[mask, data.value],
            s=14,
            color=_COLORS[status],
            label=status,
        )
    if not failed.empty:
        bottom = ax.get_ylim()[0]
        ax.scatter(
            failed["peak_memory_mb"],
            [bottom] * len(failed),
            marker="x",
            s=24,
            color=_COLORS[TrialStatus.ERROR.value],
            label="out of memory",
            clip_on=False,
        )
    ax.set_xlabel("peak memory (MB)")
    ax.set_ylabel(f"best {data.metric}")
    ax.set_title("peak memory against the metric", loc="left")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def figures(experiment: Experiment) -> dict[str, Figure]:
    """The report's figures by file-friendly name, in page order; none before a trial finished.

    Args:
        experiment: the experiment to draw.

    Returns:
        `progress`, `parallel`, `importance`, `curves`, `memory` and `slice-<param>` figures,
        then the best trial's test evaluation: `confusion` (a classifier) or
        `predicted-vs-true` (a regression model); each left out where there is nothing to draw.
    """
    return _figures(_Data(experiment))


def _figures(data: _Data) -> dict[str, Figure]:
    experiment = data.experiment
    with rc_context(_STYLE):
        made: dict[str, Figure | None] = {"curves": _curves(data)}
        if not data.finished.empty:
            several = experiment.is_multi_objective
            made = {
                "progress": _progress(data),
                # The front and importance per objective, where there are several.
                **(pareto_figures(experiment, data.trials) if several else {}),
                "parallel": _parallel(data) if data.params else None,
                "importance": None if several else _importance(experiment, data),
                **made,
                "memory": _memory(data),
            }
            for param in data.params:
                made[f"slice-{param}"] = _slice(data, param)
            evaluation = _best_evaluation(data)
            if evaluation is not None:
                made["confusion"] = _confusion(evaluation)
                made["predicted-vs-true"] = _predicted_against_true(evaluation)
    return {key: fig for key, fig in made.items() if fig is not None}


# --- output ------------------------------------------------------------------------------------


def _svg(fig: Figure, key: str) -> str:
    buffer = io.StringIO()
    # A salt per figure keeps the ids (clip paths, markers) unique across the inlined SVGs and
    # the same from one build to the next.
    with rc_context({**_STYLE, "svg.hashsalt": key}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # the XML prolog is not allowed inside HTML
    text = _METADATA.sub("", text)
    # Coordinates to a hundredth of a point (a 100th of a pixel or less) halve the file.
    return _GEOMETRY.sub(lambda m: _DECIMALS.sub(r"\1", m.group(0)), text)


def _table(table: pd.DataFrame) -> str:
    if table.empty:
        return "<p>none</p>"
    table = table.rename(columns=lambda c: c.removeprefix("params."))
    rows = table.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.4g}", border=0)
    return f"<div class=wide>{rows}</div>"


def _pre(value: Any) -> str:
    return f"<pre>{html.escape(yaml.safe_dump(value, sort_keys=False, default_flow_style=False))}</pre>"


def _sections(experiment: Experiment, data: _Data) -> list[tuple[str, str]]:
    trials = data.trials
    metric = data.metric
    sections = []
    if experiment.is_multi_objective:
        front = experiment.pareto()
        shown = ["number", "status", *(f"final.{n}" for n in experiment.objectives), "feasible"]
        shown += [c for c in front if c.startswith("params.")]
        sections.append((f"Pareto front ({len(front)} trials)", _table(front[shown])))
    top = experiment.best(TOP_TRIALS)
    if not top.empty:
        row = top.iloc[0]
        sections.append(
            (
                f"Best config: trial {row['number']}, {metric} {row[data.value]:.4g}",
                _pre(experiment.config(row["trial_id"])),
            )
        )
    evaluation = _best_evaluation(data)
    if evaluation is not None and evaluation.kind == "classification":
        per_class = evaluation.per_class.reset_index()
        sections.append(
            (f"Per class: trial {evaluation.trial} on the test split", _table(per_class))
        )
    elif evaluation is not None and evaluation.kind == "regression":
        residuals = evaluation.residuals.to_frame().T
        sections.append(
            (f"Residuals: trial {evaluation.trial} on the test split", _table(residuals))
        )
    shown = ["number", "status", "iterations", data.value, f"final.{metric}", "duration_s"]
    shown += ["peak_memory_mb"]
    shown += [c for c in trials if c.startswith(("params.", "test."))]
    sections.append((f"Top {TOP_TRIALS} trials", _table(top[[c for c in shown if c in top]])))
    failed = trials[trials["status"] == TrialStatus.ERROR.value]
    reasons = failed[["number", "error_type", "error", "peak_memory_mb", "node"]]
    sections.append((f"Failed trials ({len(failed)})", _table(reasons)))
    row = experiment.row
    environment = {
        key: (f"{v:%Y-%m-%d %H:%M:%S}" if isinstance(v, datetime) else v)
        for key in ("status", "host", "git_commit", "git_dirty", "started_at", "finished_at")
        for v in [row.get(key)]
    }
    environment["versions"] = row.get("versions") or {}
    environment["results"] = row.get("storage_path")
    sections.append(("Environment", _pre(environment)))
    sections.append(("Spec", _pre(experiment.spec)))
    return sections


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}
.slices{display:flex;flex-wrap:wrap;gap:0.5em}.slices figure{margin:0;width:400px}
table{border-collapse:collapse;font-size:12px}td,th{padding:2px 8px;text-align:right}
tr:nth-child(even){background:#f4f4f4}pre{background:#f6f6f6;padding:0.8em;overflow:auto}
.note{color:#a33;font-weight:bold}.wide{overflow-x:auto}
"""


def html_page(experiment: Experiment) -> str:
    """The report as one HTML document: inline SVG and CSS, no script, nothing to fetch."""
    data = _Data(experiment)
    drawn = _figures(data)
    counts = data.trials["status"].value_counts()
    summary = ", ".join(f"{n} {status.lower()}" for status, n in counts.items()) or "no trials"
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>hpo report: {html.escape(experiment.name)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{html.escape(experiment.name)}</h1>"
        f"<p>{experiment.mode} {html.escape(data.metric)}; {len(data.trials)} trials: "
        f"{summary}; {html.escape(str(experiment.row['searcher']))} search, "
        f"{html.escape(str(experiment.row['scheduler']))} scheduler.</p>"
    ]
    if experiment.row.get("stop_reason"):
        parts.append(f"<p>Stopped early: {html.escape(experiment.row['stop_reason'])}</p>")
    if data.finished.empty:
        parts.append(
            "<p class=note>No finished trial yet: nothing to rank or plot "
            "(trials that erred are listed below).</p>"
        )
    slices = []
    for key, fig in drawn.items():
        block = f'<figure id="fig-{html.escape(key)}">{_svg(fig, key)}</figure>'
        (slices if key.startswith("slice-") else parts).append(block)
    if slices:
        parts.append(
            "<h2>Each parameter against the metric</h2>"
            "<p>blue: completed trials, grey: pruned (their best epoch)</p><div class=slices>"
        )
        parts.extend(slices)
        parts.append("</div>")
    for title, body in _sections(experiment, data):
        parts.append(f"<h2>{html.escape(title)}</h2>{body}")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(experiment: Experiment, path: str | Path) -> Path:
    """Write the report to `path` (one self-contained HTML file) and return the path.

    Args:
        experiment: the experiment to report on.
        path: the HTML file to write.

    Raises:
        UsageError: the file cannot be written there.
    """
    path = Path(path)
    page = html_page(experiment)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the report to {str(path)!r}: {exc.strerror}") from None
    return path


def write_png(experiment: Experiment, directory: str | Path, dpi: int = 150) -> list[Path]:
    """Write each of the report's figures as `<directory>/<name>.png`; returns the files.

    Args:
        experiment: the experiment to draw.
        directory: made if missing.
        dpi: resolution of the PNG files.

    Raises:
        UsageError: the directory cannot be made or written.
    """
    directory = Path(directory)
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with rc_context(_STYLE):
            for key, fig in figures(experiment).items():
                path = directory / f"{key}.png"
                fig.savefig(path, dpi=dpi)
                written.append(path)
    except OSError as exc:
        raise UsageError(f"cannot write figures to {str(directory)!r}: {exc.strerror}") from None
    return written
