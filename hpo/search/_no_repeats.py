"""No work spent twice: a suggestion that repeats a trial's config is not trained again.

`NoRepeats` wraps a Ray searcher. A suggestion whose params equal those of a finished trial
(of this run, or of an earlier run of a resumed experiment) is told that trial's result and
counted toward the budget, and the next suggestion is asked for; one that equals a trial
still running waits for that trial's result. Either way Ray never runs it, and the trial
stream records it as a repeat (`on_repeat`), with `repeat_of` its original's number.
Errored trials are not results: a config that failed is trained again when suggested.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

from hpo.resuming import split
from hpo.search._space import Space, config_key
from hpo.types import TrialStatus

if TYPE_CHECKING:
    from hpo.resuming import FinishedTrial


@dataclass(frozen=True)
class Repeat:
    """A suggestion that repeats a trial: `of` is the Ray id of a trial of this run, or, with
    `earlier`, the store's id of an earlier run's trial."""

    params: dict[str, Any]
    of: str
    earlier: FinishedTrial | None = None


@dataclass(frozen=True)
class _Done:
    of: str
    result: dict[str, Any]  # what the searcher was told of it: each objective's value at least
    earlier: FinishedTrial | None = None


class NoRepeats(Searcher):
    """Ray's `searcher`, with suggestions that repeat a trial's config answered from that
    trial's result instead of trained (see the module's docstring).

    Args:
        space: what a suggestion's params are read with (`Space.params_of`).
        budget: suggestions of this run, repeats included (the Tuner's `num_samples`).
        known: the finished trials of the experiment's earlier runs.
        on_repeat: told each repeat, when it is made.
    """

    def __init__(
        self,
        searcher: Searcher,
        space: Space,
        *,
        budget: int,
        known: Sequence[FinishedTrial] = (),
        on_repeat: Callable[[Repeat], None] | None = None,
    ):
        self.searcher = searcher  # Ray's wrappers name what they wrap so (see `save_to_dir`)
        self.space = space
        self.on_repeat = on_repeat
        self.budget = budget
        self.proposed = 0
        self.finished: dict[str, _Done] = {}  # config key -> its result
        self.running: dict[str, str] = {}  # config key -> Ray id of the trial that trains it
        self.keys: dict[str, str] = {}  # Ray id -> its config key
        # Ray id -> the id its suggestion has in `searcher` (another where repeats came first)
        self.inner: dict[str, str] = {}
        self.waiting: dict[str, list[str]] = defaultdict(list)  # Ray id -> repeats' inner ids
        self.repeats = 0
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        for trial in known:
            ok = TrialStatus(trial.status) in (TrialStatus.COMPLETED, TrialStatus.PRUNED)
            result = {**trial.last}
            if isinstance(searcher.metric, str):  # one objective: its value as the plan has it
                result[searcher.metric] = trial.value
            if ok and trial.repeat_of is None and self._complete(result):
                self.finished[config_key(trial.params)] = _Done(trial.trial_id, result, trial)

    def _objectives(self) -> list[str]:
        metric = self.searcher.metric
        return [metric] if isinstance(metric, str) else list(metric)

    def _complete(self, result: dict[str, Any]) -> bool:
        """Whether `result` has a number for every objective (NaN is none)."""
        values = [result.get(name) for name in self._objectives()]
        return all(v is not None and v == v for v in values)

    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        accepted = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return accepted

    def suggest(self, trial_id: str) -> dict | str | None:
        attempt = 0
        while self.proposed < self.budget:
            # A repeat's suggestion keeps its own id in the searcher: Ray gives this one to
            # the next trial it creates.
            inner = trial_id if attempt == 0 else f"{trial_id}~repeat{attempt}"
            config = self.searcher.suggest(inner)
            if config is None or config == Searcher.FINISHED:
                return config
            self.proposed += 1
            if split(config)[1] is not None:  # a continued trial: it goes on, never a repeat
                self.inner[trial_id] = inner
                return config
            params = self.space.params_of(config)
            key = config_key(params)
            done = self.finished.get(key)
            if done is not None:
                self.searcher.on_trial_complete(inner, result=dict(done.result))
                self._repeated(Repeat(params, done.of, done.earlier))
            elif key in self.running:
                self.waiting[self.running[key]].append(inner)
                self._repeated(Repeat(params, self.running[key]))
            else:
                self.running[key] = trial_id
                self.keys[trial_id] = key
                self.inner[trial_id] = inner
                return config
            attempt += 1
        return Searcher.FINISHED

    def _repeated(self, repeat: Repeat) -> None:
        self.repeats += 1
        if self.on_repeat is not None:
            self.on_repeat(repeat)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(self.inner.get(trial_id, trial_id), result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        inner = self.inner.pop(trial_id, trial_id)
        self.searcher.on_trial_complete(inner, result=result, error=error)
        key = self.keys.pop(trial_id, None)
        if key is None:
            return
        self.running.pop(key, None)
        if not error and result is not None and self._complete(result):
            self.finished[key] = _Done(trial_id, dict(result))
        for inner in self.waiting.pop(trial_id, []):
            self.searcher.on_trial_complete(inner, result=result, error=error)

    def get_state(self) -> dict:
        return {
            key: value
            for key, value in self.__dict__.items()
            if key not in ("searcher", "on_repeat", "space")
        }

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)
