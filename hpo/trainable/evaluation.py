"""The best trial, evaluated once on the held-out test split after the search."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def evaluate_on_test(
    config: dict[str, Any], dataset: Any, *, checkpoint: str | None, epochs: int
) -> dict[str, float]:
    """The test-split metrics of a trial's model.

    From its checkpoint where it has one; otherwise the trial is trained again for `epochs`
    epochs, which gives the same weights (trials are seeded by their config).

    Args:
        config: the trial's whole config.
        dataset: the experiment's dataset (with a test split).
        checkpoint: the folder of the trial's last checkpoint, if any.
        epochs: the epochs the trial ran.
    """
    from hpo.trainable.checkpoint import load_checkpoint
    from hpo.trainable.loop import Trainer

    trainer = Trainer(config, dataset)
    if isinstance(checkpoint, str) and Path(checkpoint).is_dir():
        trainer.load_state_dict(load_checkpoint(checkpoint))
    else:
        for metrics in trainer.run():
            if metrics["epoch"] >= epochs:
                break
    return trainer.test()
