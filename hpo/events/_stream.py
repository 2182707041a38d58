"""The one Ray Tune callback hpo registers: Ray's hooks, adapted once into hpo's events.

Ray's `Trial` knows its Ray id and config; hpo's trials are the store's. Here, and only here,
a Ray trial becomes a `StoredTrial`: its id in the store (a trial `hpo resume` continued keeps
its earlier id), its number (Ray's order starts again at 0 in a resumed run), its params, its
best value per metric so far (going on from the store's for a continued trial), and how it
ended (pruned, which the scheduler tells the stream, told apart from completed; an error read
once). Consumers (`hpo.events._events.Consumer`) get the events in the order they were given.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Number
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import cloudpickle
from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS, DONE, TRAINING_ITERATION

from hpo.events._events import (
    Consumer,
    Event,
    SearchEnded,
    SearchStarted,
    StepEnded,
    StoredTrial,
    TrialAdded,
    TrialEnded,
    TrialError,
    TrialExploited,
    TrialRepeated,
    TrialReported,
    TrialStarted,
    TrialsWaiting,
)
from hpo.events._waiting import ResourceWait
from hpo.resuming import split
from hpo.search import Space
from hpo.trainable.config import FINAL_KEY, lean
from hpo.trainable.memory import OUT_OF_MEMORY, TrialOutOfMemory, is_out_of_memory
from hpo.trainable.node import node_of
from hpo.types import Mode, TrialStatus, keep_best

if TYPE_CHECKING:
    from hpo.resuming import RunStart, TrialStart
    from hpo.search._no_repeats import Repeat

logger = logging.getLogger(__name__)

# Ray's bookkeeping in every result; the store keeps what the trainable reported (and the
# total time, which is useful for analysis).
_RAY_KEYS = (set(AUTO_RESULT_KEYS) - {"time_total_s"}) | {
    DONE,
    "trial_id",
    "experiment_tag",
    "experiment_id",
    "should_checkpoint",
    "episodes_total",
    "timesteps_total",
}


def result_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The numbers of a Ray result that the trial reported (what the store keeps of it)."""
    metrics = {}
    for key, value in result.items():
        if key in _RAY_KEYS:
            continue
        # Python's own numbers first: `isinstance` against the `Number` ABC costs several
        # times more, for every value of every result (numpy's numbers still take that path).
        kind = type(value)
        if kind is float or kind is int or (kind is not bool and isinstance(value, Number)):
            metrics[key] = float(value)
    return metrics


@dataclass(frozen=True)
class EarlierRuns:
    """Where the stream starts: nothing for a new experiment; for a resumed one, what its
    earlier runs left (`of` takes it from the resume plan's `RunStart`)."""

    taken: int = 0  # numbers the earlier runs gave out: new trials are numbered from here
    continued: dict[str, TrialStart] = field(default_factory=dict)  # by id in the store
    succeeded: bool = False  # a trial of theirs ended without an error

    @classmethod
    def of(cls, start: RunStart | None) -> EarlierRuns:
        if start is None:
            return cls()
        return cls(start.taken, dict(start.continued), start.succeeded)


class TrialStream(Callback):
    """Ray Tune's callback hooks as hpo's events, handed to `consumers` in their order.

    Args:
        space: the searched space (a trial's params are its active keys).
        metric, mode: the spec's metric (the others' direction comes from their names).
        earlier: what the earlier runs of a resumed experiment left.
        lean: the configs are hpo's trainable's: store each with only the options its chosen
            kinds read (a user's own trainable's config is stored as it is).
        wait: what notices trials stuck waiting for resources (`TrialsWaiting`).
    """

    def __init__(
        self,
        consumers: Sequence[Consumer],
        space: Space,
        metric: str,
        mode: Mode | str,
        earlier: EarlierRuns | None = None,
        *,
        lean: bool = False,
        wait: ResourceWait | None = None,
    ):
        self.lean = lean
        self.consumers = list(consumers)
        self.space = space
        self.metric = metric
        self.mode = Mode(mode)
        self.earlier = earlier or EarlierRuns()
        self._trials: dict[str, StoredTrial] = {}  # by Ray's trial id
        self._known = 0  # trials of Ray's list already added
        self._next_number = self.earlier.taken
        # Stored ids of the trials that have started (in this run or, continued, before).
        self._started = {i for i, t in self.earlier.continued.items() if t.started}
        self._pruned: set[str] = set()  # Ray ids of the trials the scheduler stopped early
        # Trials by status, kept as they change: Ray's loop asks every step whether trials
        # wait, and counting all of a long search's trials each time would cost more each step.
        self._statuses: Counter[TrialStatus] = Counter()
        self._failed: set[int] = set()  # best-effort consumers that failed, by index
        self._wait = wait or ResourceWait()
        self._repeats: list[Repeat] = []  # told by the searcher, recorded once settled

    def repeated(self, repeat: Repeat) -> None:
        """The searcher answered a suggestion from the result of the trial it repeats (see
        `hpo.search._no_repeats`): recorded once that trial has ended and Ray's newer trials
        have their numbers."""
        self._repeats.append(repeat)

    # --- what others tell the stream -------------------------------------------------------

    def pruned(self, ray_trial_id: str) -> None:
        """The scheduler stopped this trial before its end (see `hpo.search` schedulers)."""
        self._pruned.add(ray_trial_id)

    def exploited(self, exploit: Any) -> None:
        """PBT cloned one trial into another (an `hpo.search._pbt.Exploit`, by Ray's ids)."""
        trial, source = self._trials.get(exploit.trial), self._trials.get(exploit.source)
        if trial is None or source is None:
            return  # not a trial of this stream (cannot happen: each is added first)
        self._emit(TrialExploited(trial, source, exploit.iteration, dict(exploit.params)))

    # --- the events ------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        for index, consumer in enumerate(self.consumers):
            self._call(index, consumer.receive, event)

    def close(self) -> None:
        """Close every consumer (the run is over, or failed)."""
        for index, consumer in enumerate(self.consumers):
            self._call(index, consumer.close)

    def _call(self, index: int, method: Callable[..., None], *args: Any) -> None:
        if not self.consumers[index].best_effort:
            method(*args)
            return
        if index in self._failed:
            return
        try:
            method(*args)
        except Exception:  # it logs why (to the experiment's ray.log) and stops
            self._failed.add(index)
            logger.exception("%s stopped tracking", type(self.consumers[index]).__name__)

    def _add_new(self, trials: list) -> None:
        """Add the trials Ray has created since the last call (they wait as PENDING)."""
        for ray_trial in trials[self._known :]:
            config, continuation = split(ray_trial.config)
            # A searched kind (`model.name`) leaves the base config's options of the spec's own
            # kind in a trial that drew another; its seed is computed from the whole config.
            params = self.space.params_of(config)
            config = lean(config, self.space) if self.lean else config
            if continuation is None:
                number, self._next_number = self._next_number, self._next_number + 1
                trial = StoredTrial(
                    ray_trial.trial_id,
                    number,
                    params,
                    config,
                    TrialStatus.PENDING,
                )
            else:
                earlier = self.earlier.continued.get(continuation.trial_id)
                trial = StoredTrial(
                    continuation.trial_id,
                    continuation.number,
                    params,
                    config,
                    TrialStatus.PENDING,
                    iteration=earlier.last_step if earlier else 0,
                    best=dict(earlier.best) if earlier else {},
                    continued=True,
                )
            self._trials[ray_trial.trial_id] = trial
            self._statuses[trial.status] += 1
            self._emit(TrialAdded(trial))
        self._known = len(trials)
        self._settle_repeats()

    def _settle_repeats(self) -> None:
        """Record the repeats whose original has ended, each with its original's status."""
        waiting = []
        for repeat in self._repeats:
            if repeat.earlier is not None:
                number, status = repeat.earlier.number, TrialStatus(repeat.earlier.status)
                config = repeat.earlier.config or {}
            else:
                original = self._trials.get(repeat.of)
                if original is None or not original.status.finished:
                    waiting.append(repeat)
                    continue
                number, status, config = original.number, original.status, original.config
            mine, self._next_number = self._next_number, self._next_number + 1
            trial = StoredTrial(
                f"repeat_{mine}", mine, repeat.params, config, status, repeat_of=number
            )
            self._emit(TrialRepeated(trial))
        self._repeats = waiting

    def _update(self, ray_trial: Any, **changes: Any) -> StoredTrial:
        before = self._trials[ray_trial.trial_id]
        trial = self._trials[ray_trial.trial_id] = dataclasses.replace(before, **changes)
        self._statuses[before.status] -= 1
        self._statuses[trial.status] += 1
        return trial

    def setup(self, **info: Any) -> None:
        self._emit(SearchStarted(succeeded_before=self.earlier.succeeded))

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        self._add_new(trials)
        message = self._wait.check_counts(
            self._statuses[TrialStatus.PENDING],
            self._statuses[TrialStatus.RUNNING],
            lambda: _asked(trials, self._trials),
        )
        if message is not None:
            self._emit(TrialsWaiting(message))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._emit(StepEnded())

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._add_new(trials)
        stored = self._update(trial, status=TrialStatus.RUNNING)
        first = stored.trial_id not in self._started  # Ray starts a trial again after a failure
        self._started.add(stored.trial_id)
        self._emit(TrialStarted(stored, first=first))

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        self._add_new(trials)
        step = int(result[TRAINING_ITERATION])
        metrics = result_metrics(result)
        before = self._trials[trial.trial_id]
        best = dict(before.best)
        keep_best(best, metrics, self.metric, self.mode)
        # Made directly, not by `dataclasses.replace` (a fifth of the stream's time per result).
        stored = self._trials[trial.trial_id] = StoredTrial(
            before.trial_id,
            before.number,
            before.params,
            before.config,
            before.status,
            step,
            metrics,
            best,
            before.continued,
        )
        self._emit(
            TrialReported(
                stored, step, metrics, again=step <= before.iteration, node=node_of(result)
            )
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._add_new(trials)
        status = TrialStatus.COMPLETED if self._finished_by_itself(trial) else TrialStatus.PRUNED
        self._ended(trial, status)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._add_new(trials)  # a trial can fail before it starts
        self._ended(trial, TrialStatus.ERROR, trial_error(trial))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._add_new(trials)
        self._emit(SearchEnded())

    def _ended(self, ray_trial: Any, status: TrialStatus, error: TrialError | None = None) -> None:
        stored = self._update(ray_trial, status=status)
        self._emit(
            TrialEnded(
                stored,
                error=error,
                checkpoint=self._checkpoint(ray_trial, stored),
                folders=_folders(ray_trial),
            )
        )
        self._settle_repeats()

    def _finished_by_itself(self, trial: Any) -> bool:
        """Whether a trial ended on its own rather than being stopped by the scheduler.

        Ray marks the last result `done` in both cases. hpo's trainable says it itself (its
        last result's `FINAL_KEY`); for a user's function, the scheduler's word tells.
        """
        last = trial.last_result or {}
        return bool(last[FINAL_KEY]) if FINAL_KEY in last else trial.trial_id not in self._pruned

    @staticmethod
    def _checkpoint(trial: Any, stored: StoredTrial) -> str | None:
        """The trial's latest checkpoint: the one Ray has of it, else the one `hpo resume`
        continued it from, if the trial ended there; else none (a DDP trial's checkpoints are
        its Ray Train run's, which Tune does not see)."""
        path = getattr(getattr(trial, "checkpoint", None), "path", None)
        continuation = split(trial.config)[1]
        if path is None and continuation is not None and stored.iteration == continuation.iteration:
            path = continuation.checkpoint
        return path or None


def _asked(trials: list, stored: dict[str, StoredTrial]) -> dict[str, float]:
    """What one pending trial asks of the cluster (trials of a search ask alike)."""
    for trial in trials:
        if stored[trial.trial_id].status is TrialStatus.PENDING:
            return dict(trial.placement_group_factory.required_resources)
    return {}


def _folders(trial: Any) -> tuple[Path, ...]:
    """Where a trial's checkpoints lie: Tune's trial folder, a DDP trial's Ray Train run (see
    `hpo.trainable.distributed`), and for a trial `hpo resume` continued, the folder of the
    checkpoint it started from."""
    if not trial.path:
        return ()
    folders = [Path(trial.path), Path(trial.path).parent / f"ddp_{trial.trial_id}"]
    continuation = split(trial.config)[1]
    if continuation is not None and continuation.checkpoint:
        folders.append(Path(continuation.checkpoint).parent)
    return tuple(folders)


def trial_error(trial: Any) -> TrialError:
    """The trial's exception: its type, `Type: message`, and its traceback.

    Ray has just written the error next to the trial (locally); its copy in the storage
    path may not be synced yet, so the local file is read.
    """
    exc = None
    path = trial.pickled_error_file
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            exc = cloudpickle.load(f)
    cause = getattr(exc, "cause", None) or exc
    if cause is None:
        path = trial.error_file
        text = Path(path).read_text().strip() if path and os.path.exists(path) else "unknown error"
        return TrialError("UnknownError", text.splitlines()[-1] if text else "unknown error", text)
    message = "".join(traceback.format_exception_only(type(cause), cause)).strip()
    # Ray's RayTaskError carries the trial's remote traceback as its text (older Ray versions
    # kept it in `traceback_str` instead).
    trace = _ANSI.sub("", getattr(exc, "traceback_str", None) or (str(exc) if exc is not cause else ""))
    if isinstance(cause, TrialOutOfMemory):  # hpo's trainable: its message says it all
        return TrialError(
            OUT_OF_MEMORY,
            str(cause),
            trace,
            peak_memory_mb=cause.peak_memory_mb,
            micro_batches=cause.micro_batches,
        )
    if is_out_of_memory(cause):  # a user's function: torch's or the host's own words
        return TrialError(OUT_OF_MEMORY, message, trace)
    return TrialError(type(cause).__name__, message, trace)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
