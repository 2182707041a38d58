"""Trial schedulers by name: FIFO (run every trial to the end), ASHA and Hyperband (prune at
rungs), the median stopping rule, and Population Based Training (`_pbt`).

As with searchers, each option model is both the spec section and its Ray Tune builder,
registered in `SCHEDULERS`, which the spec's union (`SchedulerSpec`) is formed from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from hpo._options import Options, register_options, tagged_union
from hpo._registry import Registry

if TYPE_CHECKING:
    from hpo.resuming import RungHistory
    from hpo.search._pbt import Exploit
    from hpo.search._space import Space


# name -> the option model of a trial scheduler (the spec's `scheduler` section).
SCHEDULERS: Registry[type[_Scheduler]] = Registry("scheduler")

# A user's function without `max_t` reports as often as it likes: the rungs go on without
# end, as in Optuna's `SuccessiveHalvingPruner`. Ray's ASHA needs a last rung; one this far
# out is never reached (2**53 reports), and its rungs below are grace * rf**k.
UNBOUNDED_T = 2**53


class _Scheduler(Options):
    # Whether a trial may go on from any checkpoint another trial still holds (PBT), so that
    # Ray must keep each trial's checkpoints while it runs rather than the best few.
    keeps_checkpoints: ClassVar[bool] = False

    def build(
        self,
        *,
        epochs: int | None,
        on_prune: Callable[[str], None] | None = None,
        history: RungHistory | None = None,
        space: Space | None = None,
        on_exploit: Callable[[Exploit], None] | None = None,
    ) -> Any:
        """Ray's scheduler for trials of at most `epochs` epochs (one report per epoch).

        Args:
            epochs: the trials' length, where the spec knows it (not for a user's function).
            on_prune: told the Ray id of each trial the scheduler stops before its end.
            history: in a resumed run, the results of the earlier runs' trials, so that the
                scheduler decides as it would have without the interruption.
            space: the search space (PBT mutates within its distributions).
            on_exploit: told each time PBT clones a trial into another (`Exploit`).
        """
        raise NotImplementedError

    def describe(self, *, epochs: int | None) -> list[str]:
        """What the scheduler will do, for `--dry-run`: its rungs, brackets or rule."""
        return []


@register_options(SCHEDULERS)
class FifoScheduler(_Scheduler):
    """Every trial runs all its epochs."""

    name: Literal["fifo"]

    def build(self, *, epochs, on_prune=None, history=None, space=None, on_exploit=None):
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()

    def describe(self, *, epochs):
        return ["every trial runs to its end"]


@register_options(SCHEDULERS)
class AshaScheduler(_Scheduler):
    """Ray's asynchronous successive halving over epochs: stops trials that trail at a rung."""

    name: Literal["asha"]
    grace_period: int = Field(
        1, ge=1, description="epochs every trial runs before it can be stopped"
    )
    reduction_factor: float = Field(
        3, gt=1, description="keep the best 1/reduction_factor at each rung"
    )
    max_t: int | None = Field(
        None, ge=1, description="epochs of the last rung (default: training.epochs)"
    )
    metric: str | None = Field(
        None,
        description="with several `objectives`, the one objective it judges trials by "
        "(default: the first)",
    )

    def build(self, *, epochs, on_prune=None, history=None, space=None, on_exploit=None):
        return _recording_asha(
            max_t=self.last_rung(epochs),
            grace_period=self.grace_period,
            reduction_factor=self.reduction_factor,
            brackets=1,
            on_prune=on_prune,
            history=history,
        )

    def last_rung(self, epochs: int | None) -> int:
        """`max_t`, else the trials' epochs, else (a user's function) no last rung."""
        return self.max_t or epochs or UNBOUNDED_T

    def describe(self, *, epochs):
        return [_bracket_line(self.grace_period, self.reduction_factor, self.last_rung(epochs), 0)]


@register_options(SCHEDULERS)
class HyperbandScheduler(AshaScheduler):
    """Hyperband: several brackets of successive halving, each starting at a later rung.

    Asynchronous Hyperband (Li et al., "A System for Massively Parallel Hyperparameter
    Tuning", 2020, section 3.3) is Ray's `AsyncHyperBandScheduler` with `brackets` > 1: bracket
    s has its first rung at grace_period * reduction_factor**s, and each trial is put in one
    bracket. Ray's synchronous `HyperBandScheduler` pauses trials and would need a checkpoint
    at every rung; the asynchronous one does not. A resumed run rebuilds the rungs of every
    bracket from the earlier trials' results (the store does not keep which bracket a trial
    was in), so they are judged a little more strictly than in one uninterrupted run.
    """

    name: Literal["hyperband"]  # type: ignore[assignment]
    brackets: int = Field(3, ge=1, description="brackets of successive halving (1: ASHA)")

    def build(self, *, epochs, on_prune=None, history=None, space=None, on_exploit=None):
        return _recording_asha(
            max_t=self.last_rung(epochs),
            grace_period=self.grace_period,
            reduction_factor=self.reduction_factor,
            brackets=self.brackets,
            on_prune=on_prune,
            history=history,
        )

    def describe(self, *, epochs):
        max_t = self.last_rung(epochs)
        return [
            f"bracket {s}: " + _bracket_line(self.grace_period, self.reduction_factor, max_t, s)
            for s in range(self.brackets)
        ]


def milestones(grace: int, rf: float, max_t: int, s: int) -> list[int]:
    """The rungs of one bracket as Ray's ASHA computes them, lowest first."""
    count = int(math.log(max_t / grace) / math.log(rf) - s + 1)
    return [int(grace * rf ** (k + s)) for k in range(count)]


def _bracket_line(grace: int, rf: float, max_t: int, s: int) -> str:
    rungs = milestones(grace, rf, max_t, s)
    if max_t == UNBOUNDED_T:
        shown = ", ".join(map(str, rungs[:5]))
        return (
            f"rungs at reports {shown}, ... (grace_period * {rf:g}**k, without end: no max_t); "
            f"the best 1/{rf:g} go on at each"
        )
    return (
        f"rungs at epochs {', '.join(map(str, rungs)) or '(none)'}, last {max_t}; "
        f"the best 1/{rf:g} go on at each"
    )


def _recording_asha(
    *,
    max_t: int,
    grace_period: int,
    reduction_factor: float,
    brackets: int,
    on_prune: Callable[[str], None] | None,
    history: RungHistory | None,
) -> Any:
    """Ray's ASHA (one bracket) or asynchronous Hyperband (several)."""
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    from hpo.resuming import move_rungs, restore_rungs

    class RecordingASHA(ASHAScheduler):
        """Ray's ASHA, noting which trials it stops before their last rung, and starting
        from the rungs of the earlier runs in a resumed one (see `hpo.resuming._rungs`).
        """

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self._history = dict(history or {})

        def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
            accepted = super().set_search_properties(metric, mode, **spec)
            self._restore_rungs()
            return accepted

        def _restore_rungs(self) -> None:
            # Once, as soon as the mode is known (Ray sets it before the first trial).
            if self._history and restore_rungs(self, self._history):
                self._history = {}

        def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
            self._restore_rungs()
            super().on_trial_add(tune_controller, trial)
            move_rungs(self, trial)

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            decision = super().on_trial_result(tune_controller, trial, result)
            stopped_early = result.get(self._time_attr, 0) < self._max_t
            if decision == TrialScheduler.STOP and stopped_early and on_prune is not None:
                on_prune(trial.trial_id)
            return decision

    # Metric and mode come from TuneConfig. Iterations are epochs: the trainable reports
    # once per epoch.
    return RecordingASHA(
        time_attr="training_iteration",
        max_t=max_t,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        brackets=brackets,
    )


@register_options(SCHEDULERS)
class MedianScheduler(_Scheduler):
    """Ray's median stopping rule: stop a trial whose best is worse than the others' median.

    At each epoch t past `grace_period`, a trial stops when its best value so far is worse
    than the median of the running means (epochs grace_period..t) of the other trials that
    reached t, once there are `min_samples_required` of them. A NaN or infinite value counts
    for no one (ray-project/ray#24809): it is left out of every running mean and best, so
    one diverged trial neither drags the median nor stops another; it fails alone (hpo's
    trainable ends it with FloatingPointError). It never pauses a trial for want of samples
    (Ray's default would restart a trial without a checkpoint from scratch).
    """

    name: Literal["median"]
    grace_period: int = Field(
        1, ge=1, description="epochs every trial runs before it can be stopped"
    )
    min_samples_required: int = Field(
        3, ge=1, description="other trials that must have reached an epoch to judge at it"
    )

    def build(self, *, epochs, on_prune=None, history=None, space=None, on_exploit=None):
        return _finite_median_rule(
            grace_period=self.grace_period,
            min_samples_required=self.min_samples_required,
            on_prune=on_prune,
        )

    def describe(self, *, epochs):
        return [
            f"from epoch {self.grace_period} on, a trial stops when its best is worse than the "
            f"median of the running means of at least {self.min_samples_required} other trials "
            "at that epoch (NaN and infinite values left out)"
        ]


def _finite_median_rule(
    *, grace_period: int, min_samples_required: int, on_prune: Callable[[str], None] | None
) -> Any:
    import numpy as np
    from ray.tune.schedulers import MedianStoppingRule, TrialScheduler

    class FiniteMedianRule(MedianStoppingRule):
        """Ray's rule on the finite values only (see `MedianScheduler`)."""

        def _running_mean(self, trial: Any, time: float) -> Any:
            values = [
                r[self._metric]
                for r in self._results[trial]
                if self._grace_period <= r[self._time_attr] <= time and _finite(r.get(self._metric))
            ]
            return np.mean(values) if values else np.nan

        def _best_result(self, trial: Any) -> Any:
            values = [r[self._metric] for r in self._results[trial] if _finite(r.get(self._metric))]
            # No finite value yet: nothing to judge it by, so no worse than the median.
            return self._compare_op(values) if values else np.nan

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            if not _finite(result.get(self._metric)):
                self._results[trial].append(result)  # kept, and left out of every mean
                return TrialScheduler.CONTINUE
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.STOP and on_prune is not None:
                on_prune(trial.trial_id)
            return decision

        def _on_insufficient_samples(self, tune_controller: Any, trial: Any, time: float) -> str:
            return TrialScheduler.CONTINUE

    return FiniteMedianRule(
        time_attr="training_iteration",
        grace_period=grace_period,
        min_samples_required=min_samples_required,
    )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@register_options(SCHEDULERS)
class PbtScheduler(_Scheduler):
    """Ray's Population Based Training: every `perturbation_interval` epochs, a trial in the
    bottom quantile continues from the checkpoint of one in the top quantile, with the
    `mutate` keys perturbed within their distributions in `space`.

    It needs a checkpoint of every trial at each perturbation (the spec's check:
    `checkpoint.every` divides `perturbation_interval`), and clones only a trial that has one
    at that epoch (`hpo.search._pbt`). The store records each trial's schedule: the params of
    each segment, and the trial and epoch it was cloned from (`Experiment.schedule()`).
    """

    name: Literal["pbt"]
    keeps_checkpoints: ClassVar[bool] = True
    perturbation_interval: int = Field(
        ge=1, description="epochs between perturbations (a multiple of checkpoint.every)"
    )
    quantile_fraction: float = Field(
        0.25, gt=0, le=0.5, description="the top and bottom fraction of the population"
    )
    resample_probability: float = Field(
        0.25, ge=0, le=1, description="chance that a key is drawn afresh rather than perturbed"
    )
    mutate: list[str] | None = Field(
        None,
        description="the space keys PBT changes while a trial trains (default: every key "
        "of `space` under optimizer.)",
    )

    def mutated_keys(self, space_keys: list[str]) -> list[str]:
        """The keys PBT mutates: `mutate`, else the space's optimizer keys."""
        if self.mutate is not None:
            return list(self.mutate)
        return [key for key in space_keys if key.startswith(PBT_MUTABLE_PREFIXES)]

    def build(self, *, epochs, on_prune=None, history=None, space=None, on_exploit=None):
        from hpo.search._pbt import build_pbt

        return build_pbt(self, space=space, on_exploit=on_exploit)

    def describe(self, *, epochs):
        keys = "the space's optimizer keys" if self.mutate is None else ", ".join(self.mutate)
        return [
            f"every {self.perturbation_interval} epochs, the bottom {self.quantile_fraction:g} "
            f"of the trials continue from a checkpoint of the top {self.quantile_fraction:g}, "
            f"with {keys} perturbed (or drawn afresh, p={self.resample_probability:g})"
        ]


# What a clone may take another value of without changing its model's weights: the
# optimizer's hyperparameters (a new `model.hidden_size` would not fit the cloned weights).
PBT_MUTABLE_PREFIXES = ("optimizer.",)


SchedulerSpec = tagged_union(SCHEDULERS)
