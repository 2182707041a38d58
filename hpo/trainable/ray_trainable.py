"""The function Ray Tune runs for every trial: the loops of `fit`, reporting each epoch."""

from __future__ import annotations

from typing import Any

from hpo.trainable.data import Dataset


def tune_trainable(config: dict[str, Any], dataset: Dataset) -> None:
    """Run one trial; `dataset` arrives once through Ray's object store (`with_parameters`)."""
    import ray
    import torch
    from ray import tune

    from hpo.trainable.loop import fit

    # One thread per CPU the trial was given: two trials on two cores must not fight over
    # all cores each (torch defaults to every core it sees).
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    for metrics in fit(config, dataset):
        tune.report(metrics)
