"""Ray's Population Based Training, as hpo runs it (`PbtScheduler` is its spec section).

Two things Ray's PBT does not promise are made sure of here:

- a trial is cloned only from a trial whose checkpoint is of the epoch it is judged at
  (ray-project/ray#27170 exploited trials that had never saved one; #28196 loaded a wrong
  one): a top trial without a checkpoint of that epoch is not a source;
- every clone is told (`on_exploit`), so that the store records each trial's schedule.

The mutations come from the space's distributions: a discrete one (a choice, an int, a float
with `step`) moves to a neighbouring value; a continuous one is multiplied by 0.8 or 1.2, or
drawn afresh; the result is kept within the distribution's bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.search._space import Space, get_path, nest, set_path

if TYPE_CHECKING:
    from hpo.search._schedulers import PbtScheduler


@dataclass(frozen=True)
class Exploit:
    """PBT cloned `source` into `trial` at `iteration`: `trial` goes on from `source`'s
    checkpoint of that epoch with `params` (its mutated keys' new values). Trials are Ray's ids."""

    trial: str
    source: str
    iteration: int
    params: dict[str, Any]


def mutations(space: Space, keys: list[str]) -> dict[str, Any]:
    """Ray's `hyperparam_mutations` for `keys`, nested as the trial's config is."""
    flat = {}
    for key in keys:
        dist = space.dists[key]
        points = dist.points()
        flat[key] = list(points) if points is not None else dist.to_ray()
    return nest(flat)


def within_bounds(space: Space, keys: list[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Ray's `custom_explore_fn`: a perturbed value is put back into its distribution's range
    (Ray multiplies without bounds, so that a learning rate can grow past `high`)."""

    def clip(config: dict[str, Any]) -> dict[str, Any]:
        for key in keys:
            dist = space.dists[key]
            if dist.points() is not None:  # moved along its list of values: within already
                continue
            low, high = dist.low, dist.high
            value = min(max(get_path(config, key), low), high)
            set_path(config, key, value)
        return config

    return clip


def build_pbt(
    options: PbtScheduler, *, space: Space | None, on_exploit: Callable[[Exploit], None] | None
) -> Any:
    """Ray's PBT over epochs, with the guards above."""
    from ray.tune.result import SHOULD_CHECKPOINT
    from ray.tune.schedulers import PopulationBasedTraining

    if space is None:
        raise ValueError("PBT mutates within the search space: build it with `space`")
    keys = options.mutated_keys(list(space))

    class CheckedPBT(PopulationBasedTraining):
        """Ray's PBT that clones only from a checkpoint of the epoch judged, and says so."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            # Ray id -> whether the result PBT last judged the trial by came with a
            # checkpoint (Ray saves it after the scheduler has decided, so it is told here).
            self._checkpointed: dict[str, bool] = {}

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            state = self._trial_state.get(trial)
            time = result.get(self._time_attr)
            due = (
                state is not None
                and time is not None
                and time - state.last_perturbation_time >= self._perturbation_interval
            )
            if due:
                self._checkpointed[trial.trial_id] = bool(result.get(SHOULD_CHECKPOINT))
            return super().on_trial_result(tune_controller, trial, result)

        def _checkpoint_or_exploit(
            self, trial: Any, tune_controller: Any, upper: list[Any], lower: list[Any]
        ) -> None:
            sources = [t for t in upper if self._checkpointed.get(t.trial_id)]
            if trial in lower and not sources:
                lower = [t for t in lower if t is not trial]  # no source: it goes on as it is
            super()._checkpoint_or_exploit(trial, tune_controller, sources, lower)

        def _exploit(self, tune_controller: Any, trial: Any, trial_to_clone: Any) -> None:
            super()._exploit(tune_controller, trial, trial_to_clone)
            if on_exploit is not None:
                iteration = int(self._trial_state[trial].last_train_time)
                params = {key: get_path(trial.config, key) for key in keys}
                on_exploit(Exploit(trial.trial_id, trial_to_clone.trial_id, iteration, params))

    return CheckedPBT(
        time_attr="training_iteration",
        perturbation_interval=options.perturbation_interval,
        quantile_fraction=options.quantile_fraction,
        resample_probability=options.resample_probability,
        hyperparam_mutations=mutations(space, keys),
        custom_explore_fn=within_bounds(space, keys),
    )
