"""The function Ray Tune runs for every trial: the loop of a `Pipeline`, reporting each epoch.

A trial reports a checkpoint every `checkpoint.every` epochs and at its last epoch, and a
restored trial continues from its latest one: Ray's, when Ray retries it after a failure, or
the one `hpo resume` found for it (see `hpo.resuming._marker`). Its checkpoints carry its results so
far (`History`), for a resume after the driver died before it recorded them.
"""

from __future__ import annotations

import tempfile
import traceback
from typing import Any

from hpo.resuming import start
from hpo.trainable.config import FINAL_KEY
from hpo.trainable.data import Dataset


def tune_trainable(
    config: dict[str, Any], dataset: Dataset | None, pipeline: type[Any] | None = None
) -> None:
    """Run one trial of `pipeline` (default: hpo's own, the base `Pipeline`).

    `dataset`, hpo's in-memory data loaded in the driver, arrives once through Ray's object
    store (`with_parameters`); data opened in the trial (None here) is opened by the pipeline.
    """
    import ray
    import torch
    from ray import tune

    from hpo.trainable.checkpoint import load_checkpoint, save_checkpoint
    from hpo.trainable.memory import release_memory
    from hpo.trainable.node import NODE_KEY, node_label
    from hpo.trainable.pipeline import Pipeline

    # One thread per CPU the trial was given: two trials on two cores must not fight over
    # all cores each (torch defaults to every core it sees).
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))

    config, restored, history = start(config)
    trainer = (pipeline or Pipeline)(config, dataset)
    if restored is not None:
        # Another trial's checkpoint: PBT cloned that trial into this one (see hpo.search._pbt).
        cloned = (restored.get_metadata() or {}).get("hpo_trial_id") not in (
            None,
            history.trial_id,
        )
        with restored.as_directory() as directory:
            state = load_checkpoint(directory)
        # A user's Pipeline may override load_state_dict(state): `cloned` only where it is.
        trainer.load_state_dict(state, cloned=True) if cloned else trainer.load_state_dict(state)

    every = trainer.config.checkpoint.every
    node = node_label()
    # Restored: its results the store lacks, and its own, again (see `History`).
    history.replay(
        tune.report,
        {NODE_KEY: node, FINAL_KEY: False},
        last={FINAL_KEY: trainer.finished},
        checkpoint=restored,
    )
    device = trainer.device
    try:
        for metrics in trainer.run():
            # Iterations are epochs, also for a trial continued from a checkpoint in a new run
            # (where Ray would count from 1): the scheduler's rungs and the store count epochs.
            epoch = metrics["epoch"]
            history.add(epoch, metrics)
            result = {**metrics, "training_iteration": epoch, NODE_KEY: node}
            if every and (epoch % every == 0 or metrics[FINAL_KEY]):
                # Ray copies the directory into the trial's storage before `report` returns.
                with tempfile.TemporaryDirectory(prefix="hpo-checkpoint-") as directory:
                    save_checkpoint(trainer.state_dict(), directory)
                    checkpoint = tune.Checkpoint.from_directory(directory)
                    checkpoint.set_metadata(history.metadata())
                    tune.report(result, checkpoint=checkpoint)
            else:
                tune.report(result)
    except BaseException as exc:
        # Ray keeps the exception, and its traceback's frames would keep the model, the
        # optimizer's state and the failed step's tensors on the device: the worker is reused
        # for the next trial (`reuse_actors`), so they are let go here. The traceback's text
        # stays whole; only the frames' variables go.
        traceback.clear_frames(exc.__traceback__)
        del trainer
        release_memory(device)
        raise
