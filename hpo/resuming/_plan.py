"""What a resumed experiment runs: its unfinished trials from their checkpoints, then new ones.

The store is the record of what happened: it is written as results arrive, so it is never
older than Ray's saved experiment state (saved every few seconds, and lost with a killed
driver). A resume therefore starts a new Ray run over what the store says is left:

- completed and pruned trials (and errored ones, unless `--errored`) are not run again;
- every other trial (running, waiting or interrupted when the run stopped) continues from its
  latest checkpoint, as the same trial of the store (see `hpo.resuming._marker`), or starts over
  where it has none; results that its checkpoint holds and the store lacks (a killed driver
  loses its last second of results) are reported again from the checkpoint, not trained again;
- new trials make up the budget: `num_samples` trials in the end;
- the searcher and the scheduler are told the earlier trials, so that both decide as they
  would have in an uninterrupted run (`hpo.resuming._warm`, `hpo.resuming._rungs`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from hpo.resuming._history import saved_results
from hpo.resuming._marker import Continuation
from hpo.resuming._rungs import RungHistory
from hpo.resuming._warm import Prior, WarmStart, warm_start
from hpo.types import Mode, TrialStatus, keep_best

if TYPE_CHECKING:
    from hpo.store import Store


@dataclass(frozen=True)
class FinishedTrial:
    trial_id: str
    status: TrialStatus
    params: dict[str, Any]
    value: float | None  # the spec's metric, last reported
    values: dict[int, float]  # the spec's metric by iteration
    number: int | None = None  # its number in its experiment
    config: dict[str, Any] | None = None  # its whole config, where the plan read it
    repeat_of: int | None = None  # the number of the trial it repeats, untrained
    # Every metric of its last result: what a searcher of several objectives was told.
    last: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContinuedTrial:
    params: dict[str, Any]
    continuation: Continuation
    values: dict[int, float]  # the spec's metric by iteration, as the scheduler judged it
    best: dict[str, float]  # each metric's best in `values`' iterations
    recovered: list[int]  # iterations the store lacks and the checkpoint reports again
    started: bool  # whether it ran before (one that waited when the run stopped has not)

    @property
    def last_step(self) -> int:
        """The last iteration the store has (those after the checkpoint's come again)."""
        return self.continuation.stored


@dataclass(frozen=True)
class TrialStart:
    """What the store has of a trial that a resumed run continues, for its record to go on
    from (which trial it is, and its number, its config's continuation marker says)."""

    last_step: int  # its last iteration in the store
    best: dict[str, float]  # each metric's best so far
    started: bool  # it ran before (it keeps its start time)


@dataclass(frozen=True)
class RunStart:
    """Where a resumed run's record of its trials starts (`hpo.events` goes on from it)."""

    taken: int  # numbers the earlier runs gave out: new trials are numbered from here
    continued: dict[str, TrialStart]  # by id in the store
    succeeded: bool  # a trial of the earlier runs ended without an error


@dataclass(frozen=True)
class ResumePlan:
    finished: list[FinishedTrial]
    continued: list[ContinuedTrial]
    taken: int  # trials the searcher proposed before; new trials are numbered from here
    new: int  # new trials to start

    @property
    def num_trials(self) -> int:
        """The trials this run starts: continued ones, then new ones."""
        return len(self.continued) + self.new

    def history(self) -> RungHistory:
        """The spec's metric by iteration of every earlier trial, for the scheduler."""
        history = {trial.trial_id: trial.values for trial in self.finished}
        history.update({t.continuation.trial_id: t.values for t in self.continued})
        return history

    def run_start(self) -> RunStart:
        """Where this run's record of its trials starts: this plan's part that it needs."""
        return RunStart(
            taken=self.taken,
            continued={
                t.continuation.trial_id: TrialStart(t.last_step, dict(t.best), t.started)
                for t in self.continued
            },
            succeeded=any(TrialStatus(t.status).succeeded for t in self.finished),
        )

    def warm_start(self, prior: Prior | None = None) -> WarmStart:
        """What the searcher starts from: this plan's part that it needs, and what the spec's
        `warm_start` and `enqueue` give it (`prior`)."""
        return warm_start(self, prior)


def plan_resume(
    store: Store,
    experiment: dict[str, Any],
    num_trials: int,
    trial_folders: Path,
    *,
    errored: bool = False,
) -> ResumePlan:
    """What resuming `experiment` (a row of the store) runs to reach `num_trials` trials.

    Args:
        trial_folders: where the experiment's trials keep their checkpoints.
        errored: run errored trials again (from their latest checkpoint).
    """
    metric, mode = experiment["metric"], Mode(experiment["mode"])
    rows = store.trial_rows(
        experiment["id"],
        ["trial_id", "number", "status", "params", "config", "value", "started_at", "repeat_of"],
    )
    results: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for row in store.result_rows(experiment["id"]):
        results[row["trial_id"]][row["iteration"]] = row["metrics"]
    checkpoints = latest_checkpoints(trial_folders)

    finished, continued = [], []
    by_number = {row["number"]: row for row in rows}
    for row in rows:
        trial_id, by_iteration = row["trial_id"], results.get(row["trial_id"], {})
        values = {it: m[metric] for it, m in by_iteration.items() if metric in m}
        status, value = TrialStatus(row["status"]), row["value"]
        original = by_number.get(row["repeat_of"]) if row["repeat_of"] is not None else None
        if original is not None and status.finished:
            # An untrained repeat: its searcher was told its original's result, as again now.
            value = original["value"]
            values = {
                it: m[metric]
                for it, m in results.get(original["trial_id"], {}).items()
                if metric in m
            }
        if status.finished and not (errored and status is TrialStatus.ERROR):
            last = by_iteration[max(by_iteration)] if by_iteration else {}
            finished.append(
                FinishedTrial(
                    trial_id,
                    status,
                    row["params"],
                    value,
                    values,
                    row["number"],
                    row["config"],
                    row["repeat_of"],
                    last=last,
                )
            )
            continue
        stored_step = max(by_iteration, default=0)
        # The latest checkpoint whose results the store has, or it holds itself: one without
        # them (written by an older hpo) would leave a gap in the trial's history.
        usable = [
            c
            for c in checkpoints.get(trial_id, [])
            if all(it in c.results for it in range(stored_step + 1, c.iteration + 1))
        ]
        iteration, path, saved = max(usable, default=SavedCheckpoint(0, None, {}))
        # What the store has of it up to the checkpoint; the trial reports the rest again
        # (see `History`), and the scheduler judges those as it would have without the
        # interruption (the dead driver may not have seen them).
        known = min(iteration, stored_step)
        best: dict[str, float] = {}
        for it in sorted(by_iteration):
            if it <= known:
                keep_best(best, by_iteration[it], metric, mode)
        continued.append(
            ContinuedTrial(
                params=row["params"],
                continuation=Continuation(trial_id, row["number"], path, iteration, stored_step),
                values={it: v for it, v in values.items() if it <= known},
                best=best,
                recovered=sorted(it for it in saved if stored_step < it <= iteration),
                started=row["started_at"] is not None,
            )
        )
    taken = max((row["number"] for row in rows), default=-1) + 1
    return ResumePlan(finished, continued, taken, max(0, num_trials - len(rows)))


class SavedCheckpoint(NamedTuple):
    iteration: int
    path: str | None
    results: dict[int, dict[str, float]]  # the trial's results up to it (see `History`)


def latest_checkpoints(trial_folders: Path) -> dict[str, list[SavedCheckpoint]]:
    """Every checkpoint under the experiment's trial folders, by the stored trial it belongs
    to (its metadata says: a continued trial writes into a new folder)."""
    from ray.tune import Checkpoint

    found: dict[str, list[SavedCheckpoint]] = defaultdict(list)
    for directory in sorted(trial_folders.glob("*/checkpoint_*")):
        if not directory.is_dir():
            continue
        try:
            metadata = Checkpoint.from_directory(str(directory)).get_metadata()
        except (OSError, ValueError):  # half-written when the driver died
            continue
        if "hpo_trial_id" in metadata:
            found[metadata["hpo_trial_id"]].append(
                SavedCheckpoint(int(metadata["iteration"]), str(directory), saved_results(metadata))
            )
    return found
