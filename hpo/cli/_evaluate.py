"""`hpo evaluate` and `hpo show --best`: a trial's model evaluated as the PyTorch guide does,
with the per-class report and confusion matrix (or the residuals), and how they are printed.

Imported only when one of these commands runs: evaluating imports torch, which `hpo --help`
must not.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from hpo.errors import UsageError

if TYPE_CHECKING:
    from hpo.results import Evaluation, Experiment

# The guide's fifth pitfall, said where `hpo evaluate` refuses.
PITFALL = (
    "choosing among trials by their test-split scores makes the test split part of the "
    "search, so its score no longer estimates how the chosen model does on new data (the "
    "guide's fifth pitfall: tune on the validation split, test once)"
)


def evaluate(
    experiment: Experiment,
    console: Console,
    *,
    number: int | None,
    split: str,
    force: bool,
    store_flag: str = "",
) -> Evaluation:
    """Evaluate a trial's checkpoint on `split`, store it, and print it.

    Args:
        experiment: the experiment the trial belongs to.
        console: where to print.
        number: the trial's number (None: the best trial).
        split: `val` or `test`.
        force: evaluate a trial other than the best on the test split all the same.
        store_flag: ` --store URL` for the commands printed, or nothing.

    Raises:
        UsageError: no such trial, the test split of a trial that is not the best without
            `force`, no checkpoint, a trainable that is a function, or no such split.
    """
    from hpo.trainable.evaluation import evaluate_trial

    best = experiment.best_number()
    if number is None:
        if best is None:
            raise UsageError(
                f"experiment {experiment.name!r} has no trial that finished without an error; "
                "name one with --trial N"
            )
        number = best
    if split == "test" and number != best and not force:
        which = f"trial {best} is" if best is not None else "no trial is yet"
        raise UsageError(
            f"trial {number} is not the best trial of {experiment.name!r} ({which}), so it is "
            f"not evaluated on the test split: {PITFALL}. Compare trials with --split val; "
            "add --force to evaluate it on the test split anyway"
        )
    trial = experiment.trial(number)
    checkpoint = trial["checkpoint_path"]
    if not checkpoint or not Path(checkpoint).is_dir():
        where = f" ({checkpoint} is gone)" if checkpoint else ""
        raise UsageError(
            f"trial {number} kept no checkpoint to evaluate{where}; trials save one with "
            "`checkpoint: {every: N}` in the spec, and the best `checkpoint.keep_trials` "
            "trials keep theirs"
        )
    pipeline = _pipeline_class(experiment.spec)
    try:
        found = evaluate_trial(
            trial["config"],
            None,
            checkpoint=checkpoint,
            epochs=trial["iterations"],
            pipeline=pipeline,
            split=split,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(f"cannot evaluate trial {number} on the {split} split: {exc}") from None
    if found is None:
        raise UsageError(
            f"the trials of {experiment.name!r} hold out no {split} split "
            "(a test split needs data.test_fraction above 0 when the search runs)"
        )
    store, experiment_id = experiment.store, experiment.row["id"]
    store.set_evaluation(experiment_id, trial["trial_id"], split, found.metrics, found.report)
    if split == "test" and number == best:
        store.set_test_metrics(experiment_id, trial["trial_id"], found.metrics)
    evaluation = experiment.evaluation(number, split)
    print_evaluation(console, experiment, evaluation, best=best)
    if evaluation.kind == "regression":
        console.print(
            f"Plots (predicted against true): hpo report {experiment.name}{store_flag}",
            highlight=False,
        )
    return evaluation


def _pipeline_class(spec: dict[str, Any]) -> type[Any] | None:
    """The stored spec's Pipeline subclass (None: hpo's own).

    Raises:
        UsageError: the trainable cannot be imported, or is a training function, whose
            checkpoints hold what the function saved, not a model hpo can rebuild.
    """
    reference = spec.get("trainable")
    if not reference:
        return None
    from hpo.trainable.pipeline import is_pipeline
    from hpo.trainable.user_code import load_callable

    try:
        trainable = load_callable(reference)
    except ImportError as exc:
        raise UsageError(
            f"cannot import the experiment's trainable {reference!r}: {exc}; run from the "
            "folder the search ran from"
        ) from None
    if not is_pipeline(trainable):
        raise UsageError(
            f"the experiment's trainable {reference!r} is a training function: hpo cannot "
            "rebuild its model from a checkpoint; evaluate it in your own code, or make it an "
            "hpo.Pipeline subclass"
        )
    return trainable


def print_evaluation(
    console: Console, experiment: Experiment, evaluation: Evaluation, *, best: int | None
) -> None:
    """The evaluation as `hpo show --best` prints it: the split's metrics, then the
    per-class table and the confusion matrix, or the residuals."""
    role = " (the best trial)" if evaluation.trial == best else ""
    console.print(
        f"[bold]{experiment.name}[/] trial {evaluation.trial}{role} on the {evaluation.split} "
        "split: " + ", ".join(f"{k} {_fmt(v)}" for k, v in evaluation.metrics.items()),
        highlight=False,
    )
    if evaluation.kind == "classification":
        table = Table("class", "precision", "recall", "f1", "support", title="Per class")
        per_class = evaluation.per_class
        classes = evaluation.report["classes"]
        ruled = False
        for name, row in per_class.iterrows():
            if name not in classes and not ruled:  # the averages, after a rule
                table.add_section()
                ruled = True
            table.add_row(
                str(name),
                _fmt(row["precision"]),
                _fmt(row["recall"]),
                _fmt(row["f1"]),
                str(int(row["support"])),
            )
        console.print(table)
        console.print(f"accuracy {_fmt(evaluation.report['accuracy'])}", highlight=False)
        confusion = evaluation.confusion
        if not confusion.empty:
            matrix = Table(
                "true \\ predicted",
                *[str(c) for c in confusion.columns],
                title="Confusion matrix (rows: true class, columns: predicted)",
            )
            for name, row in confusion.iterrows():
                matrix.add_row(str(name), *(str(int(v)) for v in row))
            console.print(matrix)
    elif evaluation.kind == "regression":
        table = Table(*evaluation.residuals.index, title="Residuals (predicted - true)")
        table.add_row(
            *(str(int(v)) if k == "count" else _fmt(v) for k, v in evaluation.residuals.items())
        )
        console.print(table)


def show_best(experiment: Experiment, console: Console, *, store_flag: str = "") -> None:
    """`hpo show NAME --best`: the best trial's evaluation on the test split."""
    evaluation = experiment.evaluation()
    print_evaluation(console, experiment, evaluation, best=evaluation.trial)
    if evaluation.kind == "regression":
        console.print(
            f"Plots (predicted against true): hpo report {experiment.name}{store_flag}",
            highlight=False,
        )


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
