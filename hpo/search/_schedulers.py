"""Trial schedulers by name: FIFO (run every trial to the end) and ASHA (prune early).

As with searchers, each option model is both the spec section and its Ray Tune builder,
registered in `SCHEDULERS`, which the spec's union (`SchedulerSpec`) is formed from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from hpo._options import Options, register_options, tagged_union
from hpo._registry import Registry

if TYPE_CHECKING:
    from hpo.resuming import RungHistory


# name -> the option model of a trial scheduler (the spec's `scheduler` section).
SCHEDULERS: Registry[type[_Scheduler]] = Registry("scheduler")


class _Scheduler(Options):
    def build(
        self,
        *,
        epochs: int | None,
        on_prune: Callable[[str], None] | None = None,
        history: RungHistory | None = None,
    ) -> Any:
        """Ray's scheduler for trials of at most `epochs` epochs (one report per epoch).

        Args:
            epochs: the trials' length, where the spec knows it (not for a user's function).
            on_prune: told the Ray id of each trial the scheduler stops before its end.
            history: in a resumed run, the results of the earlier runs' trials, so that the
                scheduler decides as it would have without the interruption.
        """
        raise NotImplementedError


@register_options(SCHEDULERS)
class FifoScheduler(_Scheduler):
    """Every trial runs all its epochs."""

    name: Literal["fifo"]

    def build(self, *, epochs, on_prune=None, history=None):
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()


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

    def build(self, *, epochs, on_prune=None, history=None):
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
            max_t=self.max_t or epochs,
            grace_period=self.grace_period,
            reduction_factor=self.reduction_factor,
        )


SchedulerSpec = tagged_union(SCHEDULERS)
