"""Searchers by name. Each option model is both the spec section and its Ray Tune builder.

Adding a searcher is adding one class here, registered in `SEARCHERS`: the spec's union
(`SearcherSpec`), its validation, its error messages ("available: grid, optuna, random") and
the runner all read the registry. Optuna's samplers are a registry too (`SAMPLERS`), which
plugins add to through the `hpo.samplers` entry point group.

Grid and random search hand Ray's variant generator the exact configurations to run, drawn
here with Ray's own samplers: that is what lets a parameter depend on another (`when:`), and
what makes `--dry-run` show exactly the trials a run will start.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from hpo._options import Options, register_options, tagged_union
from hpo._registry import Registry
from hpo.resuming import CONTINUE_KEY, Continuation
from hpo.search._space import Space, get_path, nest, optuna_name, set_path

if TYPE_CHECKING:
    from hpo.resuming import ResumePlan

# A new trial's `CONTINUE_KEY` in a resumed experiment: a value at every leaf that a continued
# trial's marker sets (Ray merges a preset configuration only into keys the base config has).
NOT_CONTINUED = dict.fromkeys(field.name for field in fields(Continuation))


# name -> the option model of a searcher (the spec's `searcher` section is one of them).
SEARCHERS: Registry[type[_Searcher]] = Registry("searcher")


class _Searcher(Options):
    # Whether the searcher needs every parameter to have finitely many values.
    needs_grid: ClassVar[bool] = False

    def build(
        self,
        space: Space,
        base: dict[str, Any],
        *,
        metric: str,
        mode: str,
        seed: int,
        num_samples: int,
        max_concurrent: int | None,
        resume: ResumePlan | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Returns Ray's search algorithm and the param space (the base config) to give the Tuner.

        The search algorithm limits the trials running at once to `max_concurrent` (None: as
        many as the resources allow); Ray's own `max_concurrent_trials` skips its variant
        generator, so each searcher does it in the way its algorithm takes it.

        With `resume`, the search goes on from where an earlier run stopped: it knows the
        earlier trials, proposes the continued trials first (each marked with its
        `CONTINUE_KEY`) and then the new ones, `resume.new` of them, as an uninterrupted run
        would have gone on.
        """
        raise NotImplementedError

    def preview(self, space: Space, *, seed: int, n: int) -> list[dict[str, Any]]:
        """The params of the first `n` trials this searcher proposes with `seed`, before any result."""
        raise NotImplementedError


def _presets(
    points: list[dict[str, Any]],
    seed: int,
    max_concurrent: int | None,
    resume: ResumePlan | None,
    taken: int = 0,
) -> Any:
    """Ray's variant generator over exact configurations; `points` are all the search's, of
    which a resumed run runs its continued trials and then the points from `resume.taken` on."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    presets = [nest(p) for p in points]
    if resume is not None:
        continued = [
            {**nest(trial.params), CONTINUE_KEY: trial.continuation.to_config()}
            for trial in resume.continued
        ]
        presets = continued + presets[resume.taken : resume.taken + resume.new]
    return BasicVariantGenerator(
        points_to_evaluate=presets, random_state=seed, max_concurrent=max_concurrent or 0
    )


def _base(base: dict[str, Any], space: Space, resume: ResumePlan | None) -> dict[str, Any]:
    return _with_continue_key(_with_every_key(base, space), resume)


def _with_continue_key(base: dict[str, Any], resume: ResumePlan | None) -> dict[str, Any]:
    """The base config of a resumed run has `CONTINUE_KEY`, for continued trials to set."""
    return base if resume is None else {**base, CONTINUE_KEY: dict(NOT_CONTINUED)}


def _with_every_key(base: dict[str, Any], space: Space) -> dict[str, Any]:
    """The base config with a value at every searched key: Ray merges a preset point only into
    keys the base has (a free-form section such as `model.params` may start empty)."""
    config = copy.deepcopy(base)
    for key, dist in space.dists.items():
        try:
            get_path(config, key)
        except (KeyError, TypeError):
            set_path(config, key, dist.extremes()[0])
    return config


@register_options(SEARCHERS)
class GridSearcher(_Searcher):
    """Every point of the grid, once (a conditional parameter only under its parents' values)."""

    name: Literal["grid"]
    needs_grid: ClassVar[bool] = True

    def build(self, space, base, *, metric, mode, seed, num_samples, max_concurrent, resume=None):
        return _presets(list(space.grid()), seed, max_concurrent, resume), _base(
            base, space, resume
        )

    def preview(self, space, *, seed, n):
        return list(itertools.islice(space.grid(), n))


@register_options(SEARCHERS)
class RandomSearcher(_Searcher):
    """Independent random samples, seeded."""

    name: Literal["random"]

    def build(self, space, base, *, metric, mode, seed, num_samples, max_concurrent, resume=None):
        # The same draws as an uninterrupted run: a resumed run takes them from where it stopped.
        points = self.preview(space, seed=seed, n=num_samples)
        return _presets(points, seed, max_concurrent, resume), _base(base, space, resume)

    def preview(self, space, *, seed, n):
        rng = np.random.default_rng(seed)
        return [space.sample(rng) for _ in range(n)]


# name -> `factory(options, seed)`, the Optuna sampler of the searcher's options.
SAMPLERS: Registry[Callable[[OptunaSearcher, int], Any]] = Registry(
    "Optuna sampler",
    group="hpo.samplers",
    accepts=Callable,  # type: ignore[arg-type]
)


@SAMPLERS.register("tpe", options={"n_startup_trials", "multivariate"}, description="TPE")
def _tpe(options: OptunaSearcher, seed: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=options.n_startup_trials, multivariate=options.multivariate
    )


@SAMPLERS.register("random", description="independent random samples")
def _random(options: OptunaSearcher, seed: int) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register("qmc", description="quasi-Monte Carlo (Sobol) points")
def _qmc(options: OptunaSearcher, seed: int) -> Any:
    import optuna

    return optuna.samplers.QMCSampler(seed=seed)


@SAMPLERS.register("gp", options={"n_startup_trials"}, description="a Gaussian process")
def _gp(options: OptunaSearcher, seed: int) -> Any:
    import optuna

    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=options.n_startup_trials)


def _sampler_names(schema: dict[str, Any]) -> None:
    # Read when the schema is made, so that plugins (loaded only then) are listed too.
    schema["enum"] = list(SAMPLERS)
    schema["description"] = f"Optuna's sampler: {SAMPLERS.describe()}"


@register_options(SEARCHERS)
class OptunaSearcher(_Searcher):
    """Bayesian optimisation with an Optuna sampler (TPE by default), through Ray's OptunaSearch."""

    name: Literal["optuna"]
    sampler: str = Field("tpe", json_schema_extra=_sampler_names)
    n_startup_trials: int = Field(10, ge=0, description="random trials before the model takes over")
    multivariate: bool = Field(True, description="model parameters jointly (TPE)")

    @field_validator("sampler")
    @classmethod
    def _known(cls, name: str) -> str:
        return SAMPLERS.check(name)

    def _study_sampler(self, seed: int) -> Any:
        import optuna

        # The store and the progress view report trials; Optuna's own log lines would repeat them.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return SAMPLERS[self.sampler](self, seed)

    def build(self, space, base, *, metric, mode, seed, num_samples, max_concurrent, resume=None):
        from ray.tune.search.optuna import OptunaSearch

        define = space.optuna_define_by_run()
        storage = None
        if resume is not None:
            storage = _resumed_study(define, metric, mode, resume)
            # A sampler seeded as the first run's would draw its first trials' values again
            # (the continued trials are enqueued and draw nothing).
            seed += resume.taken
        search = OptunaSearch(
            define, metric=metric, mode=mode, sampler=self._study_sampler(seed), storage=storage
        )
        if max_concurrent:
            from ray.tune.search import ConcurrencyLimiter

            search = ConcurrencyLimiter(search, max_concurrent=max_concurrent)
        # Constants of the base config are merged with each suggestion by Ray.
        return search, _with_continue_key(base, resume)

    def preview(self, space, *, seed, n):
        import optuna

        study = optuna.create_study(sampler=self._study_sampler(seed))
        define = space.optuna_define_by_run()
        previews = []
        for _ in range(n):
            trial = study.ask()
            constants = define(trial)
            previews.append(
                {**define.params(trial), **{k.replace("/", "."): v for k, v in constants.items()}}
            )
        return [{key: p[key] for key in space if key in p} for p in previews]


def _resumed_study(define: Any, metric: str, mode: str, resume: ResumePlan) -> Any:
    """An Optuna study that knows every earlier trial of a resumed run, as Ray's OptunaSearch
    told it the first time (final value; intermediate values by iteration; errors as FAIL),
    with the continued trials enqueued, their marker in their user attributes.

    Ray does not save the searcher after every trial, so a resumed run rebuilds it from the
    store, which is never older than the last result.
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
    storage = optuna.storages.InMemoryStorage()
    direction = "maximize" if mode == "max" else "minimize"
    # OptunaSearch opens the study by its default name, "optuna", and finds these trials.
    study = optuna.create_study(storage=storage, study_name="optuna", direction=direction)

    def searched(params: dict[str, Any]) -> dict[str, Any]:  # Optuna's names; no constants
        return {
            optuna_name(key): value
            for key, value in params.items()
            if define.dists.get(key) is not None
        }

    trials = []
    for trial in resume.finished:
        params = searched(trial.params)
        distributions = {name: define.dists[name.replace("/", ".")] for name in params}
        failed = trial.status == "ERROR" or trial.value is None or trial.value != trial.value
        trials.append(
            create_trial(
                state=TrialState.FAIL if failed else TrialState.COMPLETE,
                value=None if failed else trial.value,
                params=params,
                distributions=distributions,
                intermediate_values=trial.values,
            )
        )
    study.add_trials(trials)
    for trial in resume.continued:
        study.enqueue_trial(
            searched(trial.params), user_attrs={CONTINUE_KEY: trial.continuation.to_config()}
        )
    return storage


SearcherSpec = tagged_union(SEARCHERS)
