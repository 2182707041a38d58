"""A trial that trains on several processes at once: one torch DistributedDataParallel group
per trial (`resources: {workers: N}`), started and wired up by Ray Train.

Ray Tune runs `ddp_trainable` as the trial; it runs a Ray Train `TorchTrainer` whose workers
each run the trial's `Pipeline` on their share of every batch (gloo on CPUs, NCCL on GPUs: Ray Train sets
up the process group). Rank 0's metrics reach Tune through Ray's `TuneReportCallback`, so
the store, the searcher and the scheduler see one trial as usual.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hpo.trainable.config import FINAL_KEY, TrainableConfig
from hpo.trainable.data import Dataset

# The trial's own process only waits for its workers: it holds a sliver of a CPU so that Ray
# Tune still counts it, and the workers hold the trial's real resources.
DRIVER_CPU = 0.01


def ddp_trainable(
    config: dict[str, Any],
    dataset: Dataset,
    workers: int,
    cpu: float,
    gpu: float,
    storage_path: str,
    pipeline: type[Any] | None = None,
) -> None:
    """Run one trial as a DDP group of `workers` processes with `cpu`/`gpu` each."""
    import ray
    from ray import tune
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from hpo.resuming import split

    context = tune.get_context()
    config, continuation = split(config)
    kept = TrainableConfig.model_validate(config)
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "config": config,
            "dataset": None if dataset is None else ray.put(dataset),
            "pipeline": pipeline,
            "cpu": cpu,
            # Which stored trial this is, and the checkpoint `hpo resume` found for it.
            "trial_id": continuation.trial_id if continuation else context.get_trial_id(),
            "resume_from": continuation.checkpoint if continuation else None,
            "stored": continuation.stored if continuation else None,
        },
        scaling_config=ScalingConfig(
            num_workers=workers,
            use_gpu=gpu > 0,
            resources_per_worker={"CPU": cpu, **({"GPU": gpu} if gpu > 0 else {})},
        ),
        run_config=RunConfig(
            # One Train run per trial, named after it: a retried trial finds its run's
            # checkpoints there and continues from the latest. It lies in the experiment's
            # folder beside Tune's trial folders, where `hpo resume` looks for checkpoints.
            name=f"ddp_{context.get_trial_id()}",
            storage_path=_joined(storage_path, context.get_experiment_name()),
            callbacks=[TuneReportCallback()],
            # As Tune keeps a one-process trial's: the best `checkpoint.keep` by the spec's
            # metric (and the latest, which Ray always keeps).
            checkpoint_config=CheckpointConfig(
                num_to_keep=kept.checkpoint.keep,
                checkpoint_score_attribute=kept.metric,
                checkpoint_score_order=kept.mode,
            ),
        ),
    )
    trainer.fit()


def _worker_loop(loop_config: dict[str, Any]) -> None:
    """One process of the group: train on this rank's share of each batch, report each epoch."""
    import ray
    import torch
    from ray import train

    from hpo.resuming import History
    from hpo.trainable.checkpoint import load_checkpoint, save_checkpoint
    from hpo.trainable.node import NODE_KEY, node_label
    from hpo.trainable.pipeline import Pipeline

    torch.set_num_threads(max(1, int(loop_config["cpu"])))
    if torch.cuda.is_available():
        from ray.train.torch import get_device

        torch.cuda.set_device(get_device())
    dataset = loop_config["dataset"]
    pipeline = loop_config["pipeline"] or Pipeline
    trainer = pipeline(loop_config["config"], None if dataset is None else ray.get(dataset))
    restored, stored = train.get_checkpoint(), None  # Ray Train's: its driver saw every result
    if restored is None and loop_config["resume_from"]:
        restored = train.Checkpoint.from_directory(loop_config["resume_from"])
        stored = loop_config["stored"]
    if restored is not None:
        with restored.as_directory() as directory:
            trainer.load_state_dict(load_checkpoint(directory))
    history = History(loop_config["trial_id"], restored, stored)
    rank = train.get_context().get_world_rank()
    node = _group_nodes(node_label())
    # Restored: its results the store lacks, and its own, again (see `History`). Every rank
    # reports as often as the others; rank 0 hands over the checkpoint.
    history.replay(
        train.report,
        {NODE_KEY: node, FINAL_KEY: False},
        last={FINAL_KEY: trainer.finished},
        checkpoint=restored if rank == 0 else None,
    )
    every = trainer.config.checkpoint.every
    for metrics in trainer.run():
        epoch = metrics["epoch"]
        history.add(epoch, metrics)
        # Iterations are epochs, as in hpo's one-process trainable (see there).
        metrics.update({NODE_KEY: node, "training_iteration": epoch})
        if every and (epoch % every == 0 or metrics[FINAL_KEY]):
            with tempfile.TemporaryDirectory(prefix="hpo-checkpoint-") as directory:
                checkpoint = None
                if rank == 0:  # every rank holds the same weights; one copy is enough
                    save_checkpoint(trainer.state_dict(), directory)
                    checkpoint = train.Checkpoint.from_directory(directory)
                    checkpoint.set_metadata(history.metadata())
                train.report(metrics, checkpoint=checkpoint)
        else:
            train.report(metrics)


def _joined(storage_path: str, name: str) -> str:
    """A folder under the storage path, which may be a URI with a query (`s3://b/p?region=x`)."""
    from urllib.parse import urlsplit

    parts = urlsplit(storage_path)
    if len(parts.scheme) <= 1:  # a local path (or a Windows drive)
        return str(Path(storage_path) / name)
    return parts._replace(path=f"{parts.path.rstrip('/')}/{name}").geturl()


def _group_nodes(mine: str) -> str:
    """Where the group's processes run, as the store records it: `node xN, node xM`."""
    from collections import Counter

    import torch

    labels: list[str | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(labels, mine)
    text = ", ".join(f"{label} x{count}" for label, count in sorted(Counter(labels).items()))
    return text[:255]  # the store's column
