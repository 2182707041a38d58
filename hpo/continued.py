"""Trials that go on from an earlier run of their experiment (`hpo resume`).

A continued trial is a new Ray trial, but the same trial of the experiment: its config carries
`CONTINUE_KEY` (Ray hands configs to the trainable and to every callback, so nothing else needs
to pass it on), saying which stored trial it is and the checkpoint it starts from. Every config
has the key once an experiment has been resumed (None for a new trial): Ray merges a searcher's
configuration only into keys that the base config has.

Checkpoints carry metadata naming their stored trial and iteration, so that a later resume
finds a trial's latest checkpoint whichever run of the experiment wrote it.

Imported by the trial workers: no torch, no pandas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

CONTINUE_KEY = "_hpo_continue"


@dataclass(frozen=True)
class Continuation:
    trial_id: str  # the trial's id in the store (the Ray id of the run that created it)
    number: int
    checkpoint: str | None  # the directory to start from; None starts it over
    iteration: int  # the checkpoint's iteration (0 without one)

    def to_config(self) -> dict[str, Any]:
        return asdict(self)


def split(config: dict[str, Any]) -> tuple[dict[str, Any], Continuation | None]:
    """A trial's config without hpo's key, and the continuation it names, if any."""
    if CONTINUE_KEY not in config:
        return config, None
    config = dict(config)
    marker = config.pop(CONTINUE_KEY)
    # A new trial of a resumed experiment has the key with empty values (see searchers).
    return config, Continuation(**marker) if marker and marker["trial_id"] else None


def start(config: dict[str, Any]) -> tuple[dict[str, Any], str, Any]:
    """Where a trial starts, in the trial's own process: its config without hpo's key, its id
    in the store, and the checkpoint to continue from (Ray's, when Ray retries the trial after
    a failure; else the one `hpo resume` found; else None)."""
    from ray import tune

    config, continuation = split(config)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None and continuation is not None and continuation.checkpoint:
        checkpoint = tune.Checkpoint.from_directory(continuation.checkpoint)
    trial_id = continuation.trial_id if continuation else tune.get_context().get_trial_id()
    return config, trial_id, checkpoint


def store_trial_id(trial: Any) -> str:
    """The id under which the store keeps a Ray trial: the continued trial's, or Ray's own."""
    marker = trial.config.get(CONTINUE_KEY)  # read per result: no copy of the config
    return (marker or {}).get("trial_id") or trial.trial_id


def checkpoint_metadata(trial_id: str, iteration: int) -> dict[str, Any]:
    return {"hpo_trial_id": trial_id, "iteration": int(iteration)}
