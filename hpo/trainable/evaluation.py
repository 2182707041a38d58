"""A trial's model evaluated once on one split: the best trial on the held-out test split after
the search, or any trial that kept a checkpoint (`hpo evaluate`).

Besides the split's metrics, the evaluation holds the guide's report of the model
(`hpo.trainable.diagnostics`): a classifier's confusion matrix and per-class precision, recall,
F1 and support, or a regression model's residuals and predicted-against-true points.

Data that lives on disk is never opened by the driver: its test split is evaluated by a Ray
task, where the trials read theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

SPLITS = ("val", "test")


class Evaluation(NamedTuple):
    """What one evaluation of a model on one split found."""

    split: str  # "val" or "test"
    metrics: dict[str, float]  # `{split}_loss`, `{split}_<metric>`, ...
    report: dict[str, Any]  # `diagnostics.diagnose`'s report, plain JSON


def evaluate_trial(
    config: dict[str, Any],
    dataset: Any,
    *,
    checkpoint: str | None,
    epochs: int,
    pipeline: type[Any] | None = None,
    split: str = "test",
) -> Evaluation | None:
    """The metrics and report of a trial's model on `split`, or None where there is no such
    split (a test split needs `data.test_fraction` above 0, or a pipeline that sets one).

    From its checkpoint where it has one; otherwise the trial is trained again for `epochs`
    epochs, which gives the same weights (trials are seeded by their config).

    Args:
        config: the trial's whole config.
        dataset: the experiment's in-memory dataset, or None for data opened by the pipeline
            (an in-memory dataset is then loaded here).
        checkpoint: the folder of the trial's last checkpoint, if any.
        epochs: the epochs the trial ran.
        pipeline: the trial's `Pipeline` class (default: hpo's own).
        split: `test` or `val`.

    Raises:
        ValueError: `split` is neither, or the class names do not fit the model.
    """
    from hpo.trainable.checkpoint import load_checkpoint
    from hpo.trainable.data import Task
    from hpo.trainable.diagnostics import Predictions, class_names_of, diagnose
    from hpo.trainable.pipeline import Pipeline

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, but got {split!r}")
    trainer = (pipeline or Pipeline)(config, dataset)
    loader = getattr(trainer, f"{split}_loader")
    if loader is None:
        return None
    if isinstance(checkpoint, str) and Path(checkpoint).is_dir():
        trainer.load_state_dict(load_checkpoint(checkpoint))
    else:
        for metrics in trainer.run():
            if metrics["epoch"] >= epochs:
                break
    predictions = Predictions(trainer.task)
    metrics = trainer.evaluate(loader, split, predictions)
    names = None
    if trainer.task is Task.CLASSIFICATION:
        declared = trainer.config.data.class_names or trainer.class_names
        datasets = [getattr(trainer, f"{name}_dataset") for name in (split, "train")]
        datasets += [
            getattr(getattr(trainer, f"{name}_loader"), "dataset", None)
            for name in (split, "train")
        ]
        names = class_names_of(declared, datasets, trainer.num_outputs)
    return Evaluation(split, metrics, diagnose(predictions, names))


def evaluate_on_test(
    config: dict[str, Any],
    dataset: Any,
    *,
    checkpoint: str | None,
    epochs: int,
    pipeline: type[Any] | None = None,
) -> Evaluation | None:
    """`evaluate_trial` on the held-out test split (None without one)."""
    return evaluate_trial(
        config, dataset, checkpoint=checkpoint, epochs=epochs, pipeline=pipeline, split="test"
    )


def evaluate_remotely(
    config: dict[str, Any],
    *,
    checkpoint: str | None,
    epochs: int,
    pipeline: type[Any] | None,
    cpu: float,
    gpu: float,
) -> Evaluation | None:
    """`evaluate_on_test` as a Ray task with a trial's resources: for data opened in the
    trials (on a cluster, perhaps on their nodes' disks only), which the driver never reads.
    """
    import ray

    task = ray.remote(num_cpus=cpu, num_gpus=gpu, max_retries=0)(_evaluate_in_task)
    return ray.get(task.remote(config, checkpoint, epochs, pipeline))


def _evaluate_in_task(
    config: dict[str, Any], checkpoint: str | None, epochs: int, pipeline: type[Any] | None
) -> Evaluation | None:
    import ray
    import torch

    # As in a trial: one thread per CPU the task was given.
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    return evaluate_on_test(config, None, checkpoint=checkpoint, epochs=epochs, pipeline=pipeline)
