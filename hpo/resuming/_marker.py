"""The continuation marker: which stored trial a continued trial is, and where it starts.

A continued trial is a new Ray trial, but the same trial of the experiment: its config carries
`CONTINUE_KEY` (Ray hands configs to the trainable and to every callback, so nothing else needs
to pass it on), saying which stored trial it is and the checkpoint it starts from. Every config
has the key once an experiment has been resumed (empty for a new trial): Ray merges a
searcher's configuration only into keys that the base config has.

This module is the only one that knows the key: `mark` adds it to a config, `split` takes it
off again, `store_trial_id` reads it where a copy of the config would cost too much.

Imported by the trial workers: no torch, no pandas, no Ray.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

CONTINUE_KEY = "_hpo_continue"


@dataclass(frozen=True)
class Continuation:
    trial_id: str  # the trial's id in the store (the Ray id of the run that created it)
    number: int
    checkpoint: str | None  # the directory to start from; None starts it over
    iteration: int  # the checkpoint's iteration (0 without one)
    stored: int  # the trial's last iteration in the store (the checkpoint may be further)

    def to_config(self) -> dict[str, Any]:
        """The marker's value in a config (plain values: Ray and Optuna copy and pickle it)."""
        return asdict(self)

    @classmethod
    def from_config(cls, value: dict[str, Any] | None) -> Continuation | None:
        """The continuation a marker's value (`to_config`'s form) names; None for the empty
        marker of a new trial in a resumed experiment (see `mark`), or no marker."""
        return cls(**value) if value and value["trial_id"] else None


# A new trial's marker in a resumed experiment: a value at every leaf that a continued trial's
# marker sets (Ray merges a preset configuration only into keys the base config has).
_NOT_CONTINUED = dict.fromkeys(field.name for field in fields(Continuation))


def mark(config: dict[str, Any], continuation: Continuation | None) -> dict[str, Any]:
    """`config` with hpo's key: naming `continuation`, or, with None, the empty marker of a
    new trial (the base config of a resumed run, for continued trials to set)."""
    marker = dict(_NOT_CONTINUED) if continuation is None else continuation.to_config()
    return {**config, CONTINUE_KEY: marker}


def split(config: dict[str, Any]) -> tuple[dict[str, Any], Continuation | None]:
    """A trial's config without hpo's key, and the continuation it names, if any."""
    if CONTINUE_KEY not in config:
        return config, None
    return {k: v for k, v in config.items() if k != CONTINUE_KEY}, _read(config)


def store_trial_id(trial: Any) -> str:
    """The id under which the store keeps a Ray trial: the continued trial's, or Ray's own."""
    continuation = _read(trial.config)  # read per result: no copy of the config
    return continuation.trial_id if continuation is not None else trial.trial_id


def _read(config: dict[str, Any]) -> Continuation | None:
    return Continuation.from_config(config.get(CONTINUE_KEY))
