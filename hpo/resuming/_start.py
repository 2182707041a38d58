"""Where a trial starts, in the trial's own process: from scratch, from Ray's checkpoint after a
failure, or from the checkpoint `hpo resume` found for it."""

from __future__ import annotations

from typing import Any

from hpo.resuming._history import History
from hpo.resuming._marker import split


def start(config: dict[str, Any]) -> tuple[dict[str, Any], Any, History]:
    """A trial's config without hpo's key, the checkpoint to continue from (Ray's, when Ray
    retries the trial after a failure; else the one `hpo resume` found; else None), and its
    history up to there (which names its id in the store)."""
    from ray import tune

    config, continuation = split(config)
    checkpoint, stored = tune.get_checkpoint(), None  # Ray's: its driver saw every result
    if checkpoint is None and continuation is not None and continuation.checkpoint:
        checkpoint = tune.Checkpoint.from_directory(continuation.checkpoint)
        stored = continuation.stored
    trial_id = continuation.trial_id if continuation else tune.get_context().get_trial_id()
    return config, checkpoint, History(trial_id, checkpoint, stored)
