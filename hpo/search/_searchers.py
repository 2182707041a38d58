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
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field, field_validator, model_serializer, model_validator

from hpo._options import Options, register_options, tagged_union
from hpo._registry import Registry
from hpo.resuming import Continuation, mark
from hpo.search._constrained import constraint_values, optuna_search
from hpo.search._optuna_bridge import (
    optuna_distributions,
    optuna_params,
    optuna_study,
    optuna_trial,
    quiet_optuna,
)
from hpo.search._space import OptunaDefineByRun, Space, config_key, get_path, nest, set_path
from hpo.types import Mode

if TYPE_CHECKING:
    from hpo.pareto import Constraint
    from hpo.resuming import WarmStart
    from hpo.search._no_repeats import Repeat


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
        mode: Mode,
        seed: int,
        num_samples: int,
        max_concurrent: int | None,
        warm: WarmStart | None = None,
        on_repeat: Callable[[Repeat], None] | None = None,
        objectives: Mapping[str, Mode] | None = None,
        constraints: Sequence[Constraint] = (),
    ) -> tuple[Any, dict[str, Any]]:
        """Returns Ray's search algorithm and the param space (the base config) to give the Tuner.

        The search algorithm limits the trials running at once to `max_concurrent` (None: as
        many as the resources allow); Ray's own `max_concurrent_trials` skips its variant
        generator, so each searcher does it in the way its algorithm takes it.

        With `warm`, the search goes on from where an earlier run stopped: it knows the
        earlier trials, proposes the continued trials first (each config marked with its
        continuation, `hpo.resuming.mark`) and then the new ones, `warm.new` of them, as an
        uninterrupted run would have gone on. Its `prior` (the spec's `warm_start` and
        `enqueue`) is told too, and its first configs are the search's first proposals.

        `on_repeat` is told each suggestion that repeats a trial's config and is therefore
        not trained (see `hpo.search._no_repeats`), where the searcher answers those.

        With several `objectives` (each with its mode), a searcher that learns is told each
        one's final value; `constraints` tell it which trials are feasible. Searchers that
        do not learn ignore both.
        """
        raise NotImplementedError

    def preview(self, space: Space, *, seed: int, n: int) -> list[dict[str, Any]]:
        """The params of the first `n` trials this searcher proposes with `seed`, before any result."""
        raise NotImplementedError

    def several_objectives_problem(self) -> str | None:
        """Why this searcher cannot search several objectives at once (None: it can)."""
        return (
            f"searcher {self.name!r} optimises one metric; use grid, random, or optuna with "
            f"sampler {', '.join(sorted(MULTI_OBJECTIVE_SAMPLERS))}"
        )


def _presets(
    points: list[dict[str, Any]],
    seed: int,
    max_concurrent: int | None,
    warm: WarmStart | None,
) -> Any:
    """Ray's variant generator over exact configurations; `points` are all the search's, of
    which a resumed run runs its continued trials and then the points from `warm.taken` on."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    presets = [nest(p) for p in points]
    if warm is not None:
        continued = [mark(nest(trial.params), trial.continuation) for trial in warm.enqueued]
        presets = continued + presets[warm.taken : warm.taken + warm.new]
    return BasicVariantGenerator(
        points_to_evaluate=presets, random_state=seed, max_concurrent=max_concurrent or 0
    )


def _with_first(
    points: list[dict[str, Any]], warm: WarmStart | None, *, once: bool = False
) -> list[dict[str, Any]]:
    """The search's proposals: the spec's first configs, then the searcher's own `points`
    (with `once`, as for a grid, those the first configs already are left out)."""
    if warm is None or not warm.prior.first:
        return points
    first = [dict(p) for p in warm.prior.first]
    if once:
        seen = {config_key(p) for p in first}
        points = [p for p in points if config_key(p) not in seen]
    return first + points


def _seeded(points: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Repeats of the one config of an empty space, each with its own trial seed (the
    trainable's seed comes from its config, so the same config would train the same)."""
    return [{**p, "seed": seed + i} for i, p in enumerate(points)]


def _base(base: dict[str, Any], space: Space, warm: WarmStart | None) -> dict[str, Any]:
    return _marked(_with_every_key(base, space), warm)


def _marked(base: dict[str, Any], warm: WarmStart | None) -> dict[str, Any]:
    """The base config of a resumed run has the empty marker, for continued trials to set."""
    return base if warm is None or not warm.resumed else mark(base, None)


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

    def build(
        self, space, base, *, metric, mode, seed, num_samples, max_concurrent, warm=None, **_
    ):
        points = _with_first(list(space.grid()), warm, once=True)
        return _presets(points, seed, max_concurrent, warm), _base(base, space, warm)

    def several_objectives_problem(self):
        return None  # its trials do not depend on their results

    def preview(self, space, *, seed, n):
        return list(itertools.islice(space.grid(), n))


@register_options(SEARCHERS)
class RandomSearcher(_Searcher):
    """Independent random samples, seeded."""

    name: Literal["random"]

    def build(
        self, space, base, *, metric, mode, seed, num_samples, max_concurrent, warm=None, **_
    ):
        # The same draws as an uninterrupted run: a resumed run takes them from where it stopped.
        points = _with_first(self.preview(space, seed=seed, n=num_samples), warm)
        if not space.searched() and "seed" in base:
            points = _seeded(points, base["seed"])
        return _presets(points, seed, max_concurrent, warm), _base(base, space, warm)

    def several_objectives_problem(self):
        return None  # its trials do not depend on their results

    def preview(self, space, *, seed, n):
        rng = np.random.default_rng(seed)
        return [space.sample(rng) for _ in range(n)]


# name -> `factory(options, seed)`, the Optuna sampler of the searcher's options.
SAMPLERS: Registry[Callable[[OptunaSearcher, int], Any]] = Registry(
    "Optuna sampler",
    group="hpo.samplers",
    accepts=Callable,  # type: ignore[arg-type]
)


@SAMPLERS.register(
    "tpe", options={"n_startup_trials", "multivariate", "constant_liar"}, description="TPE"
)
def _tpe(options: OptunaSearcher, seed: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=options.n_startup_trials,
        multivariate=options.multivariate,
        constant_liar=bool(options.constant_liar),
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


@SAMPLERS.register(
    "nsga2", options={"population_size"}, description="NSGA-II, for several objectives"
)
def _nsga2(options: OptunaSearcher, seed: int) -> Any:
    from hpo.search._ga_samplers import PicklableNSGAII

    return PicklableNSGAII(seed=seed, population_size=options.population_size)


@SAMPLERS.register(
    "nsga3", options={"population_size"}, description="NSGA-III, for three or more objectives"
)
def _nsga3(options: OptunaSearcher, seed: int) -> Any:
    import warnings

    import optuna

    from hpo.search._ga_samplers import PicklableNSGAIII

    with warnings.catch_warnings():  # "experimental": chosen by name in the spec, knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return PicklableNSGAIII(seed=seed, population_size=options.population_size)


# The samplers that serve several objectives (the model-free ones serve any number).
MULTI_OBJECTIVE_SAMPLERS = frozenset({"tpe", "gp", "nsga2", "nsga3", "random", "qmc"})


def _sampler_names(schema: dict[str, Any]) -> None:
    # Read when the schema is made, so that plugins (loaded only then) are listed too.
    schema["enum"] = list(SAMPLERS)
    schema["description"] = f"Optuna's sampler: {SAMPLERS.describe()}"


# Options of the searcher itself, whichever sampler it runs.
_EVERY_SAMPLER = {"name", "sampler", "allow_repeats"}


def _read_by(schema: dict[str, Any]) -> None:
    """Say in each sampler option's description which samplers read it, from the registry
    (when the schema is made, so that plugins are named too)."""
    for key, prop in schema.get("properties", {}).items():
        if key in _EVERY_SAMPLER:
            continue
        readers = [s for s in SAMPLERS if (read := SAMPLERS.options(s)) is None or key in read]
        prop["description"] = f"{prop.get('description', key)}; for {', '.join(readers)}"


@register_options(SEARCHERS)
class OptunaSearcher(_Searcher):
    """Bayesian optimisation with an Optuna sampler (TPE by default), through Ray's OptunaSearch."""

    model_config = ConfigDict(json_schema_extra=_read_by)  # merged with Options' own

    name: Literal["optuna"]
    sampler: str = Field("tpe", json_schema_extra=_sampler_names)
    n_startup_trials: int = Field(10, ge=0, description="random trials before the model takes over")
    multivariate: bool = Field(True, description="model parameters jointly")
    constant_liar: bool | None = Field(
        None,
        description="count running trials as bad ones, so that trials running at once get "
        "different configs (default: on unless budget.max_concurrent is 1)",
    )
    allow_repeats: bool = Field(
        False,
        description="train a suggestion that repeats a finished trial's config again (for "
        "noisy objectives); by default it is told that trial's result instead",
    )
    population_size: int = Field(50, ge=2, description="trials per generation")

    @field_validator("sampler")
    @classmethod
    def _known(cls, name: str) -> str:
        return SAMPLERS.check(name)

    @model_validator(mode="after")
    def _read_by_sampler(self) -> OptunaSearcher:
        # An option the sampler does not read would be dropped without a word.
        read = SAMPLERS.options(self.sampler)
        if read is None:  # a plugin's sampler may read every option
            return self
        stray = sorted(self.model_fields_set - read - _EVERY_SAMPLER)
        if stray:
            verb = "does" if len(stray) == 1 else "do"
            raise ValueError(
                f"{', '.join(stray)} {verb} not apply to sampler {self.sampler!r}"
                + (f"; it reads: {', '.join(sorted(read))}" if read else "")
            )
        return self

    @model_serializer(mode="wrap")
    def _only_what_the_sampler_reads(self, handler: Any) -> dict[str, Any]:
        # A stored spec loads back (resume): the options its sampler does not read would be
        # refused by `_read_by_sampler`, defaults too.
        data = handler(self)
        read = SAMPLERS.options(self.sampler)
        if read is None:
            return data
        return {k: v for k, v in data.items() if k in read or k in _EVERY_SAMPLER}

    def several_objectives_problem(self) -> str | None:
        if self.sampler in MULTI_OBJECTIVE_SAMPLERS:
            return None
        return (
            f"Optuna's sampler {self.sampler!r} optimises one metric; choose sampler "
            f"{', '.join(sorted(MULTI_OBJECTIVE_SAMPLERS))}"
        )

    def _generations(self, seed: int) -> tuple[str, int] | None:
        """A genetic sampler's generation attribute and population size (None: not one)."""
        sampler = self._study_sampler(seed)
        key = getattr(type(sampler), "_get_generation_key", None)
        return None if key is None else (key(), self.population_size)

    def _study_sampler(self, seed: int, max_concurrent: int | None = 1) -> Any:
        options = self
        if self.constant_liar is None:
            # Trials at once without the lie are proposed from the same model, alike.
            options = self.model_copy(update={"constant_liar": max_concurrent != 1})
        return SAMPLERS[self.sampler](options, seed)

    def build(
        self,
        space,
        base,
        *,
        metric,
        mode,
        seed,
        num_samples,
        max_concurrent,
        warm=None,
        on_repeat=None,
        objectives=None,
        constraints=(),
    ):
        from hpo.search._no_repeats import NoRepeats

        if not space.searched():  # nothing to model: the base config, repeated with seeds
            return RandomSearcher(name="random").build(
                space,
                base,
                metric=metric,
                mode=mode,
                seed=seed,
                num_samples=num_samples,
                max_concurrent=max_concurrent,
                warm=warm,
            )
        define: Any = space.optuna_define_by_run()
        # Several objectives: Optuna is told each one's final value, in the spec's order.
        several = objectives is not None and len(objectives) > 1
        directions = list(objectives.items()) if several else [(metric, mode)]
        storage = None
        budget = num_samples
        if warm is not None:
            storage = _resumed_study(
                space, directions, warm, constraints, self._generations(seed)
            )
            if warm.resumed:
                define = _Continuing(define)
                budget = len(warm.enqueued) + warm.new
                # A sampler seeded as the first run's would draw its first trials' values
                # again (the continued trials are enqueued and draw nothing).
                seed += warm.taken
        search = optuna_search(
            constraints,
            define,
            metric=[name for name, _ in directions] if several else metric,
            mode=[m.value for _, m in directions] if several else mode.value,
            sampler=self._study_sampler(seed, max_concurrent),
            storage=storage,
        )
        if not self.allow_repeats:
            known = warm.told if warm is not None else []
            search = NoRepeats(search, space, budget=budget, known=known, on_repeat=on_repeat)
        if max_concurrent:
            from ray.tune.search import ConcurrencyLimiter

            search = ConcurrencyLimiter(search, max_concurrent=max_concurrent)
        # Constants of the base config are merged with each suggestion by Ray.
        return search, _marked(base, warm)

    def preview(self, space, *, seed, n):
        import optuna

        with quiet_optuna():
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


# The user attribute of an enqueued Optuna trial that holds its continuation.
_CONTINUATION = "hpo_continuation"


class _Continuing:
    """A space's define-by-run that gives an enqueued continued trial its config's marker,
    which Ray merges into the config with the other constants.

    A class rather than a closure: Ray pickles the searcher, and this with it, at each save.
    """

    def __init__(self, define: OptunaDefineByRun):
        self.define = define

    def __call__(self, trial: Any) -> dict[str, Any]:
        constants = self.define(trial)
        continued = Continuation.from_config(trial.user_attrs.get(_CONTINUATION))
        return mark(constants, continued) if continued else constants

    def params(self, trial: Any) -> dict[str, Any]:
        return self.define.params(trial)


def _resumed_study(
    space: Space,
    directions: list[tuple[str, Mode]],
    warm: WarmStart,
    constraints: Sequence[Constraint] = (),
    generations: tuple[str, int] | None = None,
) -> Any:
    """An Optuna study that knows every earlier trial of a resumed run, as Ray's OptunaSearch
    told it the first time (final value, a pruned trial's too; intermediate values by
    iteration; errors as FAIL), with the continued trials enqueued.

    With several objectives (`directions`: each objective and its mode), each trial's final
    value of each, and no intermediate values (Ray reports none to a multi-objective study);
    with constraints, each trial's violations, as the sampler saw them after the trial.

    Ray does not save the searcher after every trial, so a resumed run rebuilds it from the
    store, which is never older than the last result.

    A genetic sampler's generations (`generations`: its system attribute and population
    size) are given as a run that told each trial before asking the next makes them: the
    completed trials in order, `population_size` to a generation.
    """
    import optuna

    storage = optuna.storages.InMemoryStorage()
    several = len(directions) > 1
    # OptunaSearch opens the study by its default name, "optuna", and finds these trials.
    if several:
        with quiet_optuna():
            study = optuna.create_study(
                directions=[mode.direction for _, mode in directions],
                storage=storage,
                study_name="optuna",
            )
    else:
        study = optuna_study(directions[0][1], storage=storage, study_name="optuna")
    dists = optuna_distributions(space.dists)
    trials, completed = [], 0
    # Other experiments' trials (the spec's `warm_start`) first, as they came first.
    for trial in warm.every_told():
        if several:
            value: Any = [trial.last.get(name) for name, _ in directions]
        else:
            value = trial.value
        told = optuna_trial(
            trial.status,
            value,
            trial.params,
            dists,
            None if several else trial.values,
            pruned_as_complete=True,
            optuna_names=True,
            constraints=constraint_values(constraints, trial.last) if constraints else None,
        )
        if told is None:
            continue
        if generations is not None and told.state == optuna.trial.TrialState.COMPLETE:
            key, size = generations
            told.system_attrs = {**told.system_attrs, key: completed // size}
            completed += 1
        trials.append(told)
    study.add_trials(trials)
    for trial in warm.enqueued:
        study.enqueue_trial(
            optuna_params(trial.params, dists, optuna_names=True),
            user_attrs={_CONTINUATION: trial.continuation.to_config()},
        )
    for params in warm.first():  # the spec's first configs not yet proposed
        study.enqueue_trial(optuna_params(params, dists, optuna_names=True))
    return storage


SearcherSpec = tagged_union(SEARCHERS)
