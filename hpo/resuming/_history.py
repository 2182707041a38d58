"""The history a checkpoint carries: the results its trial reported up to it.

Checkpoints carry metadata naming their stored trial and iteration, so that a later resume
finds a trial's latest checkpoint whichever run of the experiment wrote it, and the results the
trial reported up to it (`History`): the driver writes results to the store in batches, so a
driver killed between two writes leaves checkpoints newer than the store, and a resume takes
the missing results from them instead of training those epochs again.

Imported by the trial workers: no torch, no pandas, no Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Number
from typing import Any

# The results a checkpoint holds at most (its latest): a killed driver's store lags about a
# second behind its trials, and the metadata of trials that report every step stays small.
KEEP_RESULTS = 1000


class History:
    """What a trial reported, iteration by iteration, carried from checkpoint to checkpoint.

    A trial restored from a checkpoint (retried by Ray, or continued by `hpo resume`) starts
    from the results its checkpoint holds, and reports again (`replays`) those the store lacks
    (a killed driver never saw them) and the checkpoint's own before it goes on: so the store
    gets them, the scheduler judges each at its rung as it would have without the
    interruption, and a trial restored at its end ends with its value. A checkpoint saved
    later holds the earlier results and its own.

    Args:
        stored: the trial's last iteration in the store, for a checkpoint `hpo resume` found
            (None for Ray's own: its driver saw every result up to it).
    """

    def __init__(self, trial_id: str, checkpoint: Any = None, stored: int | None = None):
        self.trial_id = trial_id
        metadata = (checkpoint.get_metadata() or {}) if checkpoint is not None else {}
        self.iteration = int(metadata.get("iteration", 0))  # the checkpoint's
        # JSON keys are text: iterations are stored as "1", "2", ...
        self.results: dict[str, dict[str, float]] = {
            it: metrics
            for it, metrics in metadata.get("results", {}).items()
            if int(it) <= self.iteration
        }
        self._replay_from = self.iteration if stored is None else min(stored + 1, self.iteration)

    def add(self, iteration: int, result: dict[str, Any]) -> None:
        """Note an iteration's result (its numbers: what the store keeps of it)."""
        self.iteration = int(iteration)
        self.results[str(self.iteration)] = {
            key: float(value)
            for key, value in result.items()
            if isinstance(value, Number) and not isinstance(value, bool)
        }

    def replays(self) -> list[dict[str, Any]]:
        """The results to report again on restore, in order (none for a new trial, or for a
        checkpoint of an older hpo, which holds no results)."""
        return [
            {**self.results[str(it)], "training_iteration": it}
            for it in range(self._replay_from, self.iteration + 1)
            if str(it) in self.results
        ]

    def replay(
        self,
        report: Callable[..., None],
        fields: dict[str, Any],
        *,
        last: dict[str, Any] | None = None,
        checkpoint: Any = None,
    ) -> None:
        """Report the `replays` through `report` (Ray Tune's or Ray Train's), each with
        `fields`; the last one also with `last` and `checkpoint`."""
        replays = self.replays()
        for result in replays:
            final = result is replays[-1]
            report(
                {**result, **fields, **((last or {}) if final else {})},
                checkpoint=checkpoint if final else None,
            )

    def metadata(self) -> dict[str, Any]:
        """For the checkpoint of the latest iteration."""
        kept = dict(list(self.results.items())[-KEEP_RESULTS:])
        return {"hpo_trial_id": self.trial_id, "iteration": self.iteration, "results": kept}


def saved_results(metadata: dict[str, Any]) -> dict[int, dict[str, float]]:
    """The results a checkpoint holds (see `History`), by iteration; none in an older one."""
    return {int(it): metrics for it, metrics in metadata.get("results", {}).items()}
