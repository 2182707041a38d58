"""The `hpo` command: run, validate, and look at searches.

Exit codes: 0 success, 1 the run failed (no trial finished without an error), 2 a usage or
spec error. Errors a user can fix are printed without a traceback unless `--debug` is given.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from hpo.errors import HpoError, RunInterrupted, SpecError, SpecWarning, UsageError
from hpo.search import nest
from hpo.spec import Spec, check_stored, gather, load_spec
from hpo.store import TrialStatus, resolve_url

# Off a terminal (a pipe, a CI log) rich would cut tables at 80 columns; keep them whole.
_WIDTH = None if sys.stdout.isatty() else 200
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, width=_WIDTH)

PREVIEW_TRIALS = 5


def _remember_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["hpo.debug"] = True


# Every command that reads a spec takes the same `--set KEY=VALUE` overrides.
overrides_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec key (repeatable).",
)
debug_option = click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    callback=_remember_debug,
    help="Show tracebacks of errors.",
)
store_option = click.option(
    "--store", metavar="URL", help="Results store: SQLAlchemy URL or SQLite path [env: HPO_STORE]."
)


address_option = click.option(
    "--address",
    metavar="auto|HOST:PORT",
    help="Run on an existing Ray cluster [env: RAY_ADDRESS; default: a local Ray].",
)


class _Group(click.Group):
    """Turns hpo's errors into a message and an exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunInterrupted as exc:
            err_console.print(f"[yellow]interrupted:[/] {exc}", markup=True, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            # Ctrl-C outside a search's own handling (while data loads or Ray starts, or after
            # the trials): exit as an interrupted search does, not with click's "Aborted!" and 1.
            err_console.print(
                "[yellow]interrupted.[/] An experiment that had started is marked INTERRUPTED "
                "in the store; `hpo resume NAME` goes on with it.",
                markup=True,
            )
            ctx.exit(RunInterrupted.exit_code)
        except HpoError as exc:
            if ctx.meta.get("hpo.debug"):
                raise
            err_console.print(f"[red]error:[/] {exc}", markup=True, soft_wrap=True, highlight=False)
            if not isinstance(exc, SpecError):
                err_console.print("[dim](run with --debug for the traceback)[/]")
            ctx.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@debug_option
@click.version_option(package_name="hpo-orchestra", prog_name="hpo")
def cli() -> None:
    """Hyperparameter search for PyTorch: one YAML spec, Ray Tune trials, one results store."""


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(path_type=Path))
@overrides_option
@click.option("--name", help="Experiment name (default: the spec's name).")
@store_option
@click.option(
    "--dry-run", is_flag=True, help="Show the resolved spec and the first trials; run nothing."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress; only the result.")
@click.option(
    "-v", "--verbose", is_flag=True, help="A line per finished trial instead of the live view."
)
@click.option(
    "--check", "preflight", is_flag=True, help="Run `hpo check` first; stop (exit 2) if one fails."
)
@address_option
@click.option(
    "--storage-path",
    metavar="DIR|URI",
    help="Checkpoints: a folder every node reaches, or s3://... [default: ./hpo-results].",
)
@debug_option
def run(
    spec_path: Path,
    overrides: tuple[str, ...],
    name: str | None,
    store: str | None,
    dry_run: bool,
    quiet: bool,
    verbose: bool,
    preflight: bool,
    address: str | None,
    storage_path: str | None,
) -> None:
    """Run the search a spec describes."""
    # JSON is YAML: the name stays a string whatever it looks like.
    spec = _load_spec(spec_path, [*overrides, *([f"name={json.dumps(name)}"] if name else [])])
    store_url = resolve_url(store, spec.store)
    check_stored(spec, store_url)
    if dry_run:
        _print_dry_run(spec, store_url)
        return
    if preflight and not _run_checks(spec, sample=2, as_json=False):
        err_console.print(
            "[red]error:[/] a check failed; nothing was run (fix it, or run without --check)"
        )
        raise click.exceptions.Exit(2)
    from hpo.runner import execute

    progress = Console(quiet=True) if quiet else console
    execute(
        spec,
        store_url=store_url,
        console=progress,
        live=not verbose,
        address=address,
        storage_path=storage_path,
        # Printed before Ray shuts down (about a second), not after.
        on_end=lambda experiment: _print_summary(experiment, store, brief=quiet),
    )


@cli.command()
@click.argument("name")
@store_option
@click.option("--errored", is_flag=True, help="Also run the trials that ended with an error again.")
@click.option(
    "--continue",
    "go_on",
    is_flag=True,
    help="Go on with an experiment that budget.stop_when stopped, up to its budget.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress; only the result.")
@click.option(
    "-v", "--verbose", is_flag=True, help="A line per finished trial instead of the live view."
)
@address_option
@debug_option
def resume(
    name: str,
    store: str | None,
    errored: bool,
    go_on: bool,
    quiet: bool,
    verbose: bool,
    address: str | None,
) -> None:
    """Go on with an experiment that stopped before its end (Ctrl-C, a killed run).

    Completed and pruned trials are kept; running and interrupted ones continue from their
    latest checkpoint; new trials make up the spec's budget.
    """
    from hpo.runner import resume as resume_experiment

    progress = Console(quiet=True) if quiet else console
    shown: list[Any] = []

    def summary(experiment: Any) -> None:  # before Ray shuts down, not after
        _print_summary(experiment, store, brief=quiet)
        shown.append(experiment)

    experiment = resume_experiment(
        name,
        store_url=resolve_url(store),
        errored=errored,
        console=progress,
        live=not verbose,
        address=address,
        on_end=summary,
        go_on=go_on,
    )
    if not shown:  # nothing was left to run
        _print_summary(experiment, store, brief=quiet)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(path_type=Path))
@overrides_option
@debug_option
def validate(spec_path: Path, overrides: tuple[str, ...]) -> None:
    """Check a spec without running anything (the code it names is imported, not run)."""
    spec = _load_spec(spec_path, overrides)
    check_stored(spec, resolve_url(None, spec.store))
    console.print(f"[green]ok[/] {spec_path}: {_describe(spec)}")


@cli.command(name="lr-find")
@click.argument("spec_path", metavar="SPEC", type=click.Path(path_type=Path))
@overrides_option
@click.option(
    "--min",
    "min_lr",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-7,
    show_default=True,
    help="The ramp's first learning rate.",
)
@click.option(
    "--max",
    "max_lr",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="The ramp's last learning rate.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=10),
    default=100,
    show_default=True,
    help="Optimizer steps of the whole ramp.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the curve to FILE (.svg or .png).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the points, the suggestions and the range as JSON.",
)
@debug_option
def lr_find(
    spec_path: Path,
    overrides: tuple[str, ...],
    min_lr: float,
    max_lr: float,
    steps: int,
    plot_path: Path | None,
    as_json: bool,
) -> None:
    """Run a learning-rate range test on the spec's base config and propose a range for
    optimizer.lr (in this process, no Ray; nothing is written to the store)."""
    from hpo.cli._lr_find import run_lr_find

    spec = _load_spec(spec_path, overrides)
    try:
        run_lr_find(
            spec,
            console,
            min_lr=min_lr,
            max_lr=max_lr,
            steps=steps,
            plot_path=plot_path,
            as_json=as_json,
        )
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted.[/] lr-find stopped; nothing was written.")
        click.get_current_context().exit(130)


@cli.command(name="check")
@click.argument("spec_path", metavar="SPEC", type=click.Path(path_type=Path))
@overrides_option
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Configs drawn from the space to check besides the base config.",
)
@click.option("--json", "as_json", is_flag=True, help="The results as JSON, for scripts.")
@debug_option
def check_command(spec_path: Path, overrides: tuple[str, ...], sample: int, as_json: bool) -> None:
    """Check the trainable before a search: data, model, one batch overfitted, gradients,
    modes, speed and memory, in one process (no Ray; nothing is written).

    Exit codes: 0 every check passed, 1 a check failed, 2 the spec is invalid.
    """
    spec = _load_spec(spec_path, overrides)
    if not _run_checks(spec, sample=sample, as_json=as_json):
        raise click.exceptions.Exit(1)


def _run_checks(spec: Spec, *, sample: int, as_json: bool) -> bool:
    """`hpo check` on a loaded spec, printed as it goes (or as JSON at the end); whether
    every check passed. Ctrl-C ends it with 130, as it ends a search."""
    from hpo.spec import check

    shown: set[str] = set()

    def show(result: Any) -> None:
        if result.config not in shown:
            shown.add(result.config)
            console.print(f"[bold]{result.config}[/] config", highlight=False)
        mark = "[dim]-[/]" if result.skipped else "[green]✔[/]" if result.ok else "[red]✘[/]"
        console.print(f"  {mark} {result.name}: {result.reason}", highlight=False, markup=True)
        if result.fix and not result.ok:
            console.print(f"      [yellow]fix:[/] {result.fix}", highlight=False, markup=True)

    if not as_json:
        console.print(
            f"Checking [bold]{spec.name}[/] (no Ray; nothing is written)", highlight=False
        )
    try:
        report = check(spec, sample=sample, progress=None if as_json else show)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted.[/] No check was recorded anywhere.", markup=True)
        raise click.exceptions.Exit(RunInterrupted.exit_code) from None
    if as_json:
        rows = [result.to_dict() for result in report]
        payload = {"ok": report.ok, "configs": report.configs, "results": rows}
        click.echo(json.dumps(_plain_json(payload), indent=2, allow_nan=False))
        return report.ok
    for label, params in report.configs.items():
        if params:
            console.print(
                f"{label}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in params.items()),
                highlight=False,
            )
    failed = len(report.failed)
    checked = sum(1 for r in report if not r.skipped)
    if failed:
        console.print(
            f"[red]{failed} of {checked} checks failed[/] on {len(report.configs)} configs"
        )
    else:
        console.print(f"[green]all {checked} checks passed[/] on {len(report.configs)} configs")
    return report.ok


def _load_spec(spec_path: Path, overrides: Sequence[str]) -> Spec:
    """`load_spec`, its warnings shown as errors are: file, line and key, no traceback."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpecWarning)
        spec = load_spec(spec_path, overrides)
    for warning in caught:
        if issubclass(warning.category, SpecWarning):
            err_console.print(
                f"[yellow]warning:[/] {warning.message}",
                markup=True,
                soft_wrap=True,
                highlight=False,
            )
        else:  # not ours to show: on to the filters it would have met
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return spec


@cli.command()
@debug_option
def schema() -> None:
    """Print the JSON Schema of a spec, for editors to validate and complete spec files."""
    click.echo(json.dumps(Spec.model_json_schema(), indent=2))


@cli.command(name="ls")
@store_option
@debug_option
def list_experiments(store: str | None) -> None:
    """List the experiments in the store."""
    from hpo.results import experiments

    table = experiments(resolve_url(store))
    if table.empty:
        console.print(f"No experiments in {resolve_url(store)} yet.")
        return
    view = Table(
        "name", "status", "metric", "best", "trials", "completed", "pruned", "errors", "started"
    )
    stopped = []
    for row in table.itertuples():
        reason = getattr(row, "stop_reason", None)
        if isinstance(reason, str):
            stopped.append((row.name, reason))
        view.add_row(
            row.name,
            f"{row.status} (stopped early)" if isinstance(reason, str) else row.status,
            f"{row.mode} {row.metric}",
            _fmt(row.best_value),
            *(
                str(int(v)) if v == v and v is not None else "0"
                for v in (row.trials, row.completed, row.pruned, row.errored)
            ),
            f"{row.started_at:%Y-%m-%d %H:%M}",
        )
    console.print(view)
    for name, reason in stopped:
        console.print(f"{name} stopped early: {reason}", highlight=False)


@cli.command()
@click.argument("name")
@store_option
@click.option(
    "--sort",
    "sort_by",
    metavar="COL",
    help="Order by a column (default: the best value of the spec's metric); -COL reverses.",
)
@click.option("--top", type=click.IntRange(min=1), help="Show only the first K trials.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in TrialStatus], case_sensitive=False),
    help="Only trials in this status (repeatable).",
)
@click.option(
    "--trial",
    "number",
    type=click.IntRange(min=0),
    help=(
        "Show one trial whole: its metrics by epoch, checkpoint, and error with traceback "
        "(-f csv: its epochs; --sort, --top and --status do not apply)."
    ),
)
@click.option(
    "--best",
    "best_evaluation",
    is_flag=True,
    help=(
        "Show the best trial's evaluation on the test split: its per-class precision, "
        "recall, F1 and support and its confusion matrix, or its residuals."
    ),
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@debug_option
def show(
    name: str,
    store: str | None,
    sort_by: str | None,
    top: int | None,
    statuses: tuple[str, ...],
    number: int | None,
    best_evaluation: bool,
    fmt: str,
) -> None:
    """Show an experiment's trials, best first (or one trial whole, with --trial; the best
    trial's test evaluation, with --best)."""
    from hpo.results import load, select

    experiment = load(name, resolve_url(store))
    if best_evaluation:
        if number is not None:
            raise UsageError("--best and --trial N show different things; give one of them")
        _show_best(experiment, fmt, store)
        return
    if number is not None:
        _show_trial(experiment, number, fmt)
        return
    trials = select(experiment, sort_by=sort_by, top=top, statuses=[s.upper() for s in statuses])
    if fmt == "json":
        click.echo(trials.to_json(orient="records", date_format="iso", indent=2))
        return
    if fmt == "csv":
        click.echo(trials.to_csv(index=False), nl=False)
        return
    test = experiment.row["test_metrics"]
    console.print(
        f"[bold]{experiment.name}[/]: {experiment.status}, {experiment.mode} {experiment.metric}"
    )
    _print_stop_reason(experiment)
    if test:
        console.print(
            "test split, best trial: " + ", ".join(f"{k} {_fmt(v)}" for k, v in test.items())
        )
    console.print(_trial_table(trials, experiment.metric))
    if "pareto" in trials:
        console.print(
            f"{len(experiment.pareto())} trials on the Pareto front, marked "
            f"{'*'!r} in the # column (hpo best {experiment.name} prints it)",
            highlight=False,
        )
    failed = trials.dropna(subset=["error"])
    for _, row in failed.iterrows():
        console.print(
            f"[red]trial {row['number']} failed:[/] {row['error']}", markup=True, highlight=False
        )
    if not failed.empty:
        console.print(
            f"Traceback: hpo show {experiment.name}{f' --store {store}' if store else ''}"
            f" --trial {failed.iloc[0]['number']}",
            highlight=False,
        )
    console.print(
        f"Plots: hpo report {experiment.name}{f' --store {store}' if store else ''}"
        f" -o {experiment.name}.html"
    )


@cli.command()
@click.argument("name")
@store_option
@click.option(
    "--trial",
    "number",
    type=click.IntRange(min=0),
    help="The trial to evaluate [default: the best trial].",
)
@click.option(
    "--split",
    type=click.Choice(["val", "test"]),
    default="val",
    show_default=True,
    help="The split to evaluate on.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Evaluate a trial other than the best on the test split all the same.",
)
@debug_option
def evaluate(name: str, store: str | None, number: int | None, split: str, force: bool) -> None:
    """Evaluate a trial's checkpoint as the guide does: the split's metrics, the per-class
    report and confusion matrix (or the residuals), stored with the trial. In this process,
    no Ray. Only the best trial is evaluated on the test split, unless --force."""
    from hpo.cli._evaluate import evaluate as run_evaluation
    from hpo.results import load

    experiment = load(name, resolve_url(store))
    run_evaluation(
        experiment,
        console,
        number=number,
        split=split,
        force=force,
        store_flag=f" --store {store}" if store else "",
    )


@cli.command()
@click.argument("name")
@store_option
@click.option(
    "-f", "--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
@click.option(
    "--pick",
    type=int,
    metavar="N",
    help="Print trial N as a spec that runs it alone (with several objectives, a trial of "
    "the front).",
)
@debug_option
def best(name: str, store: str | None, fmt: str, pick: int | None) -> None:
    """Print the best trial as a spec that runs it alone (`hpo best NAME > best.yaml`); with
    several objectives, the Pareto front as a table (`--pick N` for a trial's spec)."""
    from hpo.results import load

    experiment = load(name, resolve_url(store))
    if pick is None and experiment.is_multi_objective:
        from hpo.cli._pareto import print_front

        print_front(console, experiment, f" --store {store}" if store else "")
        return
    spec = experiment.best_spec() if pick is None else experiment.trial_spec(pick)
    click.echo(
        yaml.safe_dump(spec, sort_keys=False) if fmt == "yaml" else json.dumps(spec, indent=2),
        nl=fmt == "json",
    )


@cli.command()
@click.argument("name")
@store_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A .csv or .parquet file.",
)
@click.option(
    "--history", is_flag=True, help="One row per trial and iteration instead of per trial."
)
@click.option(
    "--optuna",
    "optuna_url",
    metavar="URL",
    help="Write an Optuna study to this storage URL instead.",
)
@debug_option
def export(
    name: str, store: str | None, output: Path | None, history: bool, optuna_url: str | None
) -> None:
    """Write an experiment's trials to CSV or Parquet, or as an Optuna study."""
    from hpo.results import load, to_file, to_optuna

    experiment = load(name, resolve_url(store))
    if optuna_url:
        study = to_optuna(experiment, optuna_url)
        console.print(
            f"Wrote Optuna study {study.study_name!r} ({len(study.trials)} trials) to {optuna_url}"
        )
        console.print(f"Open it with: optuna-dashboard {optuna_url}")
    if output:
        rows = to_file(experiment, output, history=history)
        console.print(f"Wrote {rows} rows to {output}")
    if not optuna_url and not output:
        raise UsageError("say where to export: -o FILE (.csv or .parquet) or --optuna URL")


@cli.command()
@click.argument("name")
@store_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write [default: NAME.html, unless --png is given].",
)
@click.option(
    "--png",
    "png_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Also write each figure as DIR/<figure>.png.",
)
@debug_option
def report(name: str, store: str | None, output: Path | None, png_dir: Path | None) -> None:
    """Write one self-contained HTML file (it opens offline) that shows a search at a glance."""
    from hpo.results import load, write_html, write_png

    experiment = load(name, resolve_url(store))
    if output is None and png_dir is None:
        output = Path(f"{experiment.name}.html")
    if output is not None:
        path = write_html(experiment, output)
        console.print(f"Wrote {path} ({path.stat().st_size / 1024:.0f} kB)")
    if png_dir is not None:
        files = write_png(experiment, png_dir)
        console.print(f"Wrote {len(files)} figures to {png_dir}/")


def _trial_table(trials: Any, metric: str) -> Table:
    params = [c for c in trials.columns if c.startswith("params.")]
    tests = [c for c in trials.columns if c.startswith("test.")]
    # Where each trial ran, once trials ran on more than one Ray node (a cluster).
    nodes = ["node"] if trials["node"].nunique() > 1 else []
    # Stores written before hpo measured memory, and user functions, have none.
    memory = ["peak MB"] if trials["peak_memory_mb"].notna().any() else []
    micro = ["micro"] if (trials["micro_batches"].fillna(1) > 1).any() else []
    # Untrained repeats of a trial's config, once there are any.
    repeats = ["repeat of"] if trials["repeat_of"].notna().any() else []
    view = Table()
    columns = ["#", "status", *repeats, "epochs", f"best {metric}", "final", "seconds"]
    columns += [*memory, *micro]
    for column in [*columns, *nodes]:
        view.add_column(column, justify="left" if column in ("status", "node") else "right")
    for column in params + tests:
        view.add_column(column.removeprefix("params."), justify="right")
    from hpo.cli._pareto import front_marks

    for mark, (_, row) in zip(front_marks(trials), trials.iterrows(), strict=True):
        view.add_row(
            f"{mark}{row['number']}",
            row["status"],
            *(_count(row["repeat_of"]) for _ in repeats),
            str(row["iterations"]),
            _fmt(row.get(f"best.{metric}")),
            _fmt(row.get(f"final.{metric}")),
            _fmt(row["duration_s"], digits=1),
            *(_fmt(row["peak_memory_mb"], digits=1) for _ in memory),
            *(_count(row["micro_batches"]) for _ in micro),
            *(str(row["node"] or "") for _ in nodes),
            *(_fmt(row[c]) for c in params + tests),
        )
    return view


def _show_best(experiment: Any, fmt: str, store: str | None) -> None:
    """`hpo show NAME --best`: the best trial's evaluation on the test split."""
    if fmt != "table":
        evaluation = experiment.evaluation()
        if fmt == "csv":
            table = evaluation.per_class if evaluation.kind == "classification" else evaluation.points
            click.echo(table.to_csv(), nl=False)
            return
        shown = {
            "trial": evaluation.trial,
            "split": evaluation.split,
            "metrics": evaluation.metrics.to_dict(),
            **evaluation.report,
        }
        click.echo(json.dumps(_plain_json(shown), indent=2, allow_nan=False))
        return
    from hpo.cli._evaluate import show_best

    show_best(experiment, console, store_flag=f" --store {store}" if store else "")


def _print_schedule(experiment: Any, number: int) -> None:
    """A trial's PBT schedule, where PBT cloned another trial into it."""
    import pandas as pd

    schedule = experiment.schedule()
    mine = schedule[schedule["number"] == number]
    if len(mine) < 2:
        return
    params = [c for c in mine.columns if c.startswith("params.")]
    view = Table(
        "segment", "from epoch", "cloned from", *(c.removeprefix("params.") for c in params)
    )
    for _, row in mine.iterrows():
        source = row["cloned_from"]
        view.add_row(
            str(row["segment"]),
            str(row["start_iteration"] + 1),
            "-" if pd.isna(source) else f"trial {source}",
            *(_fmt(row[c]) for c in params),
        )
    console.print("schedule (PBT):")
    console.print(view)


def _show_trial(experiment: Any, number: int, fmt: str) -> None:
    """`hpo show NAME --trial N`: one trial, whole."""
    trial = experiment.trial(number)
    history = trial.pop("history")
    if fmt == "csv":
        click.echo(history.to_csv(index=False), nl=False)
        return
    if fmt == "json":
        # What JSON has no word for: NaN and infinities as null, times as ISO text (as pandas
        # writes them for `hpo show -f json`).
        rows = json.loads(history.to_json(orient="records", date_format="iso"))
        click.echo(json.dumps(_plain_json({**trial, "history": rows}), indent=2, allow_nan=False))
        return
    started, ended = trial["started_at"], trial["ended_at"]
    seconds = f", {(ended - started).total_seconds():.1f} s" if started and ended else ""
    console.print(
        f"[bold]{experiment.name}[/] trial {number} ({trial['trial_id']}): {trial['status']}, "
        f"{trial['iterations']} epochs{seconds}"
        + (f", on {trial['node']}" if trial["node"] else ""),
        highlight=False,
    )
    console.print("params: " + ", ".join(f"{k} {_fmt(v)}" for k, v in trial["params"].items()))
    _print_schedule(experiment, number)
    if not history.empty:
        hidden = {"trial_id", "iteration", "reported_at"}
        if "epoch" in history and (history["epoch"] == history["iteration"]).all():
            hidden.add("epoch")  # hpo's trainable: the same as the first column
        hidden |= {"micro_batches", "effective_batch_size"}  # on the memory line below
        metrics = [c for c in history.columns if c not in hidden]
        table = Table("epoch", *metrics)
        for _, row in history.iterrows():
            table.add_row(str(row["iteration"]), *(_fmt(row[c]) for c in metrics))
        console.print(table)
    memory = _memory_line(trial, history)
    if memory:
        console.print(memory, highlight=False)
    if trial["checkpoint_path"]:
        console.print(f"checkpoint: {trial['checkpoint_path']}", highlight=False)
    if trial["error"]:
        console.print(f"[red]failed:[/] {trial['error']}", highlight=False)
        if trial["error_traceback"]:
            console.print(trial["error_traceback"].rstrip(), markup=False, highlight=False)


# --- output helpers ----------------------------------------------------------------------------


def _memory_line(trial: dict[str, Any], history: Any) -> str:
    """`memory: peak 41.2 MB, 2 micro-batches (effective batch 64)`, or "" where unmeasured."""
    peak, pieces = trial.get("peak_memory_mb"), trial.get("micro_batches")
    if peak is None and pieces is None:
        return ""
    parts = [f"peak {peak:.1f} MB" if peak is not None else "peak not measured"]
    if pieces is not None:
        parts.append(f"{pieces} micro-batch{'es' if pieces != 1 else ''}")
        if "effective_batch_size" in history and history["effective_batch_size"].notna().any():
            parts[-1] += f" (effective batch {int(history['effective_batch_size'].max())})"
    return "memory: " + ", ".join(parts)


def _describe(spec: Spec) -> str:
    space = spec.search_space()
    size = space.grid_size()
    shape = f"{size} grid points" if size is not None else "continuous"
    return (
        f"{spec.name}: {spec.num_trials()} trials, {spec.searcher.name} search, {spec.scheduler.name} "
        f"scheduler, {spec.mode.value} {spec.metric}; {len(space)} parameters ({shape})"
    )


def _plain_json(value: Any) -> Any:
    """A value of the store as strict JSON takes it: NaN and infinities as None, times as ISO."""
    if isinstance(value, dict):
        return {key: _plain_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _plain_values(values: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars from a pandas row as Python values, which YAML can write."""
    return {key: value.item() if hasattr(value, "item") else value for key, value in values.items()}


def _count(value: Any) -> str:
    """A whole number of a nullable column (pandas holds it as a float, missing as NaN)."""
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return "-"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def _print_dry_run(spec: Spec, store_url: str) -> None:
    console.print("[bold]Resolved spec[/] (nothing will run):")
    console.print(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), markup=False)
    console.print(_describe(spec))
    console.print(f"store: {store_url}")
    epochs = spec.training.epochs if spec.trainable_kind.uses_sections else None
    console.print(f"{spec.scheduler.name} scheduler:", highlight=False)
    for line in spec.scheduler.describe(epochs=epochs):
        console.print(f"  {line}", highlight=False)
    prior = gather(spec, store_url)
    for note in prior.notes:
        console.print(f"Warm start: {note}", highlight=False)
    n = min(PREVIEW_TRIALS, spec.num_trials())
    first = [dict(p) for p in prior.first[:n]]
    previews = first + spec.searcher.preview(spec.search_space(), seed=spec.seed, n=n - len(first))
    if first:
        console.print(f"Trials 0 to {len(first) - 1} are the enqueued configs.")
    if not spec.search_space().searched() and spec.num_trials() > 1:
        console.print(
            f"Nothing is searched: the base config runs {spec.num_trials()} times, with trial "
            f"seeds {spec.seed} to {spec.seed + spec.num_trials() - 1}."
        )
    console.print(f"First {len(previews)} trials the {spec.searcher.name} searcher proposes:")
    view = Table()
    keys = list(spec.search_space())
    view.add_column("#", justify="right")
    for key in keys:
        view.add_column(key, justify="right")
    for i, params in enumerate(previews):
        view.add_row(str(i), *(_fmt(params[k]) for k in keys))
    console.print(view)


def _print_stop_reason(experiment: Any) -> None:
    """Why the search stopped before its budget (`budget.stop_when`), if it did."""
    reason = experiment.row.get("stop_reason")
    if reason:
        console.print(f"Stopped early: {reason}", highlight=False)


def _print_summary(experiment: Any, store: str | None, *, brief: bool = False) -> None:
    """The end of a run: counts, the best trial (its config as ready-to-paste YAML), the top
    five, failures with their reasons, where everything is, and what to run next."""
    trials = experiment.trials()
    counts = trials["status"].value_counts()
    console.print(
        f"\n[bold]{experiment.name}[/]: {len(trials)} trials: "
        + ", ".join(f"{n} {status.lower()}" for status, n in counts.items())
    )
    repeats = int(trials["repeat_of"].notna().sum())
    if repeats:
        console.print(
            f"{repeats} of them repeated a finished trial's config and were told its result "
            "instead of training again (`repeat of` in hpo show)"
        )
    seeds = [c.get("seed") for c in (experiment.config(n) for n in trials["number"].head(2))]
    if not experiment.spec.get("space") and len(trials) > 1 and seeds[0] != seeds[-1]:
        console.print(
            f"Nothing was searched: the same config ran {len(trials)} times, each with its "
            "own trial seed (`seed` in each trial's config)"
        )
    _print_stop_reason(experiment)
    store_flag = f" --store {store}" if store else ""
    top = experiment.best(5)
    if experiment.is_multi_objective:
        from hpo.cli._pareto import print_front

        print_front(console, experiment, store_flag)
    elif not top.empty:
        row = top.iloc[0]
        console.print(
            f"Best trial {row['number']}: {experiment.metric} = {row[f'best.{experiment.metric}']:.4f}"
            f" ({row['status'].lower()} after {row['iterations']} epochs)"
        )
        test = experiment.row.get("test_metrics")
        if test:
            console.print(
                "On the test split: " + ", ".join(f"{k} {_fmt(v)}" for k, v in test.items())
            )
        if not brief:
            params = {
                k.removeprefix("params."): v
                for k, v in row.items()
                if k.startswith("params.") and v == v
            }
            console.print(
                "Best config (its searched keys; `hpo best` prints a whole runnable spec):"
            )
            console.print(
                yaml.safe_dump(nest(_plain_values(params)), sort_keys=False), markup=False
            )
            console.print("Top trials:")
            console.print(_trial_table(top, experiment.metric))
    failed = trials.dropna(subset=["error"])
    for _, row in failed.head(5).iterrows():
        console.print(f"[red]trial {row['number']} failed:[/] {row['error']}", highlight=False)
    if len(failed) > 5:
        console.print(
            f"... and {len(failed) - 5} more failed trials (hpo show {experiment.name} --status error)"
        )
    folder = Path(experiment.row["storage_path"]) / experiment.name
    console.print(f"Results: {experiment.store.url}; trial folders, checkpoints and logs: {folder}")
    console.print(
        f"Next: hpo show {experiment.name}{store_flag}   hpo best {experiment.name}{store_flag}"
    )
    console.print(f"Plots: hpo report {experiment.name}{store_flag} -o {experiment.name}.html")


def main(args: Sequence[str] | None = None) -> int:
    """Run the `hpo` command on `args` (default: the command line) and return its exit code.

    The console script and `python -m hpo` exit with it; other callers (a test, a wrapper)
    get it back instead of a `SystemExit`.
    """
    # As with `python -m`, the user's own modules (`model: {name: my_models:net}`,
    # `trainable: train:main`) import from the working directory; Ray's workers inherit it.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        # click's standalone mode reports what it handles itself (usage errors, "Aborted!",
        # a closed pipe) and then always ends in `sys.exit`: keep all that, return the code.
        cli.main(args=list(args) if args is not None else None, prog_name="hpo")
    except SystemExit as exc:
        return _exit_code(exc.code)
    return 0


def _exit_code(code: object) -> int:
    """What `sys.exit(code)` would make the process's exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # as Python prints a message given to sys.exit
    return 1


if __name__ == "__main__":
    sys.exit(main())
