"""The best trial, evaluated once on the held-out test split after the search.

Data that lives on disk is never opened by the driver: its test split is evaluated in a
process of its own (the trials read it in theirs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def evaluate_on_test(
    config: dict[str, Any],
    dataset: Any,
    *,
    checkpoint: str | None,
    epochs: int,
    pipeline: type[Any] | None = None,
) -> dict[str, float] | None:
    """The test-split metrics of a trial's model, or None when it has no test split.

    From its checkpoint where it has one; otherwise the trial is trained again for `epochs`
    epochs, which gives the same weights (trials are seeded by their config).

    Args:
        config: the trial's whole config.
        dataset: the experiment's in-memory dataset, or None for data opened by the pipeline.
        checkpoint: the folder of the trial's last checkpoint, if any.
        epochs: the epochs the trial ran.
        pipeline: the trial's `Pipeline` class (default: hpo's own).
    """
    from hpo.trainable.checkpoint import load_checkpoint
    from hpo.trainable.pipeline import Pipeline

    trainer = (pipeline or Pipeline)(config, dataset)
    if trainer.test_loader is None:
        return None
    if isinstance(checkpoint, str) and Path(checkpoint).is_dir():
        trainer.load_state_dict(load_checkpoint(checkpoint))
    else:
        for metrics in trainer.run():
            if metrics["epoch"] >= epochs:
                break
    return trainer.test()


def evaluate_in_own_process(
    config: dict[str, Any],
    *,
    checkpoint: str | None,
    epochs: int,
    pipeline: type[Any] | None = None,
) -> dict[str, float] | None:
    """`evaluate_on_test` for data opened by the pipeline, in a fresh process, so that the
    driver opens none of its files (and holds none of its memory)."""
    import multiprocessing

    from ray import cloudpickle

    # By value: a pipeline class of a script (`__main__`) is not importable by name there.
    job = cloudpickle.dumps((config, checkpoint, epochs, pipeline))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_evaluate_pickled, (job,))


def _evaluate_pickled(job: bytes) -> dict[str, float] | None:
    from ray import cloudpickle

    config, checkpoint, epochs, pipeline = cloudpickle.loads(job)
    return evaluate_on_test(config, None, checkpoint=checkpoint, epochs=epochs, pipeline=pipeline)
