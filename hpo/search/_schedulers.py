"""Trial schedulers by name: FIFO (run every trial to the end) and ASHA (prune early).

As with searchers, each option model is both the spec section and its Ray Tune builder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from hpo._options import Options, by_name

# A stored trial's id -> its spec metric by iteration: what a resumed run's scheduler knows.
History = dict[str, dict[int, float]]


class _Scheduler(Options):
    def build(
        self,
        *,
        epochs: int | None,
        on_prune: Callable[[str], None] | None = None,
        history: History | None = None,
    ) -> Any:
        """Ray's scheduler for trials of at most `epochs` epochs (one report per epoch).

        Args:
            epochs: the trials' length, where the spec knows it (not for a user's function).
            on_prune: told the Ray id of each trial the scheduler stops before its end.
            history: in a resumed run, the results of the earlier runs' trials, so that the
                scheduler decides as it would have without the interruption.
        """
        raise NotImplementedError


class FifoScheduler(_Scheduler):
    """Every trial runs all its epochs."""

    name: Literal["fifo"]

    def build(self, *, epochs, on_prune=None, history=None):
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()


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

    def build(self, *, epochs, on_prune=None, history=None):
        from ray.tune.schedulers import ASHAScheduler, TrialScheduler

        from hpo.resuming import store_trial_id

        class RecordingASHA(ASHAScheduler):
            """Ray's ASHA, noting which trials it stops before their last rung, and starting
            from the rungs of the earlier runs in a resumed one.

            Ray does not restore ASHA's rungs (ray-project/ray#30838), so they are rebuilt from
            the store: a trial's value at each milestone it reached, as Ray records it.
            """

            def __init__(self, *args: Any, **kwargs: Any):
                super().__init__(*args, **kwargs)
                self._history = dict(history or {})

            def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
                accepted = super().set_search_properties(metric, mode, **spec)
                self._restore_rungs()
                return accepted

            def _restore_rungs(self) -> None:
                if not self._history or self._metric_op is None:
                    return
                for bracket in self._brackets:
                    for milestone, recorded in bracket._rungs:
                        for trial_id, values in self._history.items():
                            # Ray records the first result at or past the milestone.
                            reached = [it for it in sorted(values) if it >= milestone]
                            if reached:
                                recorded[trial_id] = self._metric_op * values[reached[0]]
                self._history = {}

            def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
                self._restore_rungs()
                super().on_trial_add(tune_controller, trial)
                # A continued trial is a new Ray trial: its rungs move to its new id.
                stored = store_trial_id(trial)
                if stored != trial.trial_id:
                    for bracket in self._brackets:
                        for _, recorded in bracket._rungs:
                            if stored in recorded:
                                recorded[trial.trial_id] = recorded.pop(stored)

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


SchedulerSpec = Annotated[
    Annotated[FifoScheduler | AshaScheduler, Field(discriminator="name")], BeforeValidator(by_name)
]
