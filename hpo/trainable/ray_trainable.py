"""The function Ray Tune runs for every trial: the loops of `Trainer`, reporting each epoch.

A trial reports a checkpoint every `checkpoint.every` epochs and at its last epoch, and a
restored trial (retried after a failure, or resumed) continues from Ray's latest one.
"""

from __future__ import annotations

import tempfile
from typing import Any

from hpo.trainable.config import FINAL_KEY
from hpo.trainable.data import Dataset


def tune_trainable(config: dict[str, Any], dataset: Dataset) -> None:
    """Run one trial; `dataset` arrives once through Ray's object store (`with_parameters`)."""
    import ray
    import torch
    from ray import tune

    from hpo.cluster import NODE_KEY, node_label
    from hpo.trainable.checkpoint import load_checkpoint, save_checkpoint
    from hpo.trainable.loop import Trainer

    # One thread per CPU the trial was given: two trials on two cores must not fight over
    # all cores each (torch defaults to every core it sees).
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))

    trainer = Trainer(config, dataset)
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as directory:
            trainer.load_state_dict(load_checkpoint(directory))

    every = trainer.cfg.checkpoint.every
    node = node_label()
    for metrics in trainer.run():
        metrics[NODE_KEY] = node
        if every and (metrics["epoch"] % every == 0 or metrics[FINAL_KEY]):
            # Ray copies the directory into the trial's storage before `report` returns.
            with tempfile.TemporaryDirectory(prefix="hpo-checkpoint-") as directory:
                save_checkpoint(trainer.state_dict(), directory)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)
