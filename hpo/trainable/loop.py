"""The epoch loop of one trial, independent of Ray: `fit` trains one config in plain Python.

The loop itself is `Pipeline` (`hpo.trainable.pipeline`): `Trainer` is its name here, as hpo's
own trainable (the base `Pipeline`, nothing overridden). Both yield one dict of metrics per
epoch; whoever drives them (Ray Tune's trainable, a test, a notebook) decides what to do with
them, and may stop after any epoch. `state_dict()` after an epoch is everything needed to
continue exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hpo.trainable.config import TrainableConfig
from hpo.trainable.data import Dataset
from hpo.trainable.pipeline import Pipeline, pick_device, pick_precision
from hpo.trainable.seeding import seed_everything, trial_seed

# hpo's own trainable: the pipeline with nothing overridden.
Trainer = Pipeline

__all__ = ["Trainer", "fit", "pick_device", "pick_precision", "seed_everything", "trial_seed"]


def fit(
    config: TrainableConfig | dict[str, Any],
    dataset: Dataset | None = None,
    *,
    state: dict[str, Any] | None = None,
    seed: int | None = None,
    pipeline: type[Pipeline] = Pipeline,
) -> Iterator[dict[str, Any]]:
    """Train the configured model, yielding the metrics of every epoch.

    Args:
        config: the trainable's config.
        dataset: the whole in-memory dataset (split here); None for data the config opens
            itself (an image folder, your own data function).
        state: a `state_dict()` (e.g. from `load_checkpoint`) to continue from.
        seed: overrides the trial's seed derived from the config.
        pipeline: the `Pipeline` subclass to train with.

    Raises:
        FloatingPointError: when the training loss becomes NaN or infinite.
    """
    trainer = pipeline(config, dataset, seed=seed)
    if state is not None:
        trainer.load_state_dict(state)
    yield from trainer.run()
