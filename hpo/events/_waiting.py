"""Trials stuck waiting for resources, noticed and said in words.

Ray never refuses a trial it cannot place yet: it keeps it PENDING and says so, after a minute,
in a warning that hpo's quiet console hides. The stream (`hpo.events._stream`) asks
`ResourceWait` at each turn of Ray's loop; once trials have waited too long with none of the
search's trials running, it emits `TrialsWaiting` with what they wait for, which the progress
view shows.

The words for amounts of resources live here too, and `hpo.runner._resources` uses them for
its refusals, so that both say "1 CPU and 1 GPU" alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from hpo.types import TrialStatus

# Ray's resource names, and how a person reads them; other names are custom resources.
RESOURCE_NAMES = {"CPU": ("CPU", "CPUs"), "GPU": ("GPU", "GPUs")}

WAIT_NOTICE_S = 60.0  # a wait shorter than this is a trial start, not worth a word
WAIT_REPEAT_S = 5.0  # how often a wait is said again (and Ray asked what is free)


def amount_text(name: str, amount: float) -> str:
    """An amount of one resource in words, e.g. "2 CPUs", "1 GPU", "0.5 TPU"."""
    one, many = RESOURCE_NAMES.get(name, (name, name))
    return f"{number_text(amount)} {one if amount == 1 else many}"


def bundle_text(bundle: Mapping[str, float]) -> str:
    """What a bundle of resources holds, e.g. "1 CPU and 1 GPU" (zero amounts left out)."""
    parts = [amount_text(name, amount) for name, amount in bundle.items() if amount > 0]
    return " and ".join(parts) or "nothing"


def number_text(value: float) -> str:
    return f"{value:g}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _available_resources() -> Mapping[str, float]:
    import ray

    return ray.available_resources()


class ResourceWait:
    """Notices a search stuck for resources: once trials have been pending for longer than
    `after_s` with none of the search's trials running, `check` says what they wait for, again
    every `every_s` at most.

    Trials pending beside running ones wait for those to end, which is the search's own pace;
    with none running they wait for the cluster (other jobs hold it, or a node has yet to
    join), as Ray Tune's own warning judges too.

    Args:
        free: the resources free now (Ray's `available_resources`); asked only when a notice
            is due, since it is a call to Ray's control store.
    """

    def __init__(
        self,
        after_s: float = WAIT_NOTICE_S,
        every_s: float = WAIT_REPEAT_S,
        clock: Callable[[], float] = time.monotonic,
        free: Callable[[], Mapping[str, float]] = _available_resources,
    ):
        self.after_s = after_s
        self.every_s = every_s
        self._clock = clock
        self._free = free
        self._since: float | None = None  # since when trials are pending and none runs
        self._told: float | None = None  # when this wait was last said

    def check(
        self, statuses: Iterable[TrialStatus], asked: Callable[[], Mapping[str, float]]
    ) -> str | None:
        """What the pending trials wait for, when it is time to say so; else None.

        Args:
            statuses: the status of each trial of the search.
            asked: what one pending trial asks of the cluster (read only when it is said).
        """
        statuses = list(statuses)
        return self.check_counts(
            statuses.count(TrialStatus.PENDING), statuses.count(TrialStatus.RUNNING), asked
        )

    def check_counts(
        self, pending: int, running: int, asked: Callable[[], Mapping[str, float]]
    ) -> str | None:
        """`check`, from the number of pending and of running trials (what the trial stream
        keeps as statuses change, cheaper than a look at every trial each step)."""
        now = self._clock()
        if not pending or running:
            self._since = self._told = None
            return None
        if self._since is None:
            self._since = now
        if now - self._since < self.after_s:
            return None
        if self._told is not None and now - self._told < self.every_s:
            return None
        self._told = now
        return waiting_for(pending, asked(), self._free(), now - self._since)


def waiting_for(
    pending: int, asked: Mapping[str, float], free: Mapping[str, float], waited_s: float
) -> str:
    """A line saying what `pending` trials, each asking `asked`, wait for, e.g. "3 trials have
    waited 2 min for 1 CPU and 1 GPU each; free now: 2 CPUs, 0 GPUs"."""
    names = [name for name in RESOURCE_NAMES if name in free or name in asked]
    now = ", ".join(amount_text(name, free.get(name, 0.0)) for name in names or ["CPU"])
    count = f"{pending} trials have" if pending > 1 else "1 trial has"
    each = " each" if pending > 1 else ""
    return f"{count} waited {_duration(waited_s)} for {bundle_text(asked)}{each}; free now: {now}"
