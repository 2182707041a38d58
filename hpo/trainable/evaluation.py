"""The best trial, evaluated once on the held-out test split after the search.

Data that lives on disk is never opened by the driver: its test split is evaluated by a Ray
task, where the trials read theirs.
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


def evaluate_remotely(
    config: dict[str, Any],
    *,
    checkpoint: str | None,
    epochs: int,
    pipeline: type[Any] | None,
    cpu: float,
    gpu: float,
) -> dict[str, float] | None:
    """`evaluate_on_test` as a Ray task with a trial's resources: for data opened in the
    trials (on a cluster, perhaps on their nodes' disks only), which the driver never reads.
    """
    import ray

    task = ray.remote(num_cpus=cpu, num_gpus=gpu, max_retries=0)(_evaluate_in_task)
    return ray.get(task.remote(config, checkpoint, epochs, pipeline))


def _evaluate_in_task(
    config: dict[str, Any], checkpoint: str | None, epochs: int, pipeline: type[Any] | None
) -> dict[str, float] | None:
    import ray
    import torch

    # As in a trial: one thread per CPU the task was given.
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    return evaluate_on_test(config, None, checkpoint=checkpoint, epochs=epochs, pipeline=pipeline)
