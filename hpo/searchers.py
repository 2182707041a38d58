"""Searchers by name. Each option model is both the spec section and its Ray Tune builder.

Adding a searcher is adding one class here and to `SearcherSpec`: the spec's validation,
its error messages ("expected 'grid', 'random' or 'optuna'") and the runner all read it.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from hpo.options import Options, by_name
from hpo.space import Space


class _Searcher(Options):
    # Whether the searcher needs every parameter to have finitely many values.
    needs_grid: ClassVar[bool] = False

    def build(
        self, space: Space, base: dict[str, Any], *, metric: str, mode: str, seed: int
    ) -> tuple[Any, dict[str, Any]]:
        """Returns Ray's search algorithm (None for Ray's own variant generator) and the param space."""
        raise NotImplementedError

    def preview(
        self, space: Space, base: dict[str, Any], *, seed: int, n: int
    ) -> list[dict[str, Any]]:
        """The params of the first `n` trials this searcher proposes with `seed`, before any result."""
        raise NotImplementedError


class GridSearcher(_Searcher):
    """Every point of the grid, once (Ray's variant generator)."""

    name: Literal["grid"]
    needs_grid: ClassVar[bool] = True

    def build(self, space, base, *, metric, mode, seed):
        return None, space.ray_param_space(base, grid=True)

    def preview(self, space, base, *, seed, n):
        points = itertools.product(*(space.dists[key].values() for key in space))
        return [dict(zip(space, point, strict=True)) for point in itertools.islice(points, n)]


class RandomSearcher(_Searcher):
    """Independent random samples (Ray's variant generator, seeded)."""

    name: Literal["random"]

    def build(self, space, base, *, metric, mode, seed):
        from ray.tune.search.basic_variant import BasicVariantGenerator

        return BasicVariantGenerator(random_state=seed), space.ray_param_space(base, grid=False)

    def preview(self, space, base, *, seed, n):
        # The same generator and random stream as Ray's BasicVariantGenerator, one sample each.
        from ray.tune.search.sample import _BackwardsCompatibleNumpyRng
        from ray.tune.search.variant_generator import generate_variants

        rng = _BackwardsCompatibleNumpyRng(seed)
        # Ray samples in the order of the nested config, so the base decides the order too.
        param_space = space.ray_param_space(base, grid=False)
        configs = [
            next(generate_variants({"config": param_space}, random_state=rng))[1] for _ in range(n)
        ]
        return [space.params_of(config["config"]) for config in configs]


class OptunaSearcher(_Searcher):
    """Bayesian optimisation with Optuna's TPE sampler, asked through Ray's OptunaSearch."""

    name: Literal["optuna"]
    n_startup_trials: int = Field(10, ge=0, description="random trials before TPE takes over")
    multivariate: bool = Field(True, description="model parameters jointly (TPE)")

    def build(self, space, base, *, metric, mode, seed):
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(
            optuna.logging.WARNING
        )  # the store and progress view report instead
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=self.n_startup_trials, multivariate=self.multivariate
        )
        search = OptunaSearch(
            space.optuna_define_by_run(), metric=metric, mode=mode, sampler=sampler
        )
        # Constants of the base config are merged with each suggestion by Ray.
        return search, dict(base)

    def preview(self, space, base, *, seed, n):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=self.n_startup_trials, multivariate=self.multivariate
        )
        study = optuna.create_study(sampler=sampler)
        define = space.optuna_define_by_run()
        previews = []
        for _ in range(n):
            trial = study.ask()
            define(trial)
            previews.append({name.replace("/", "."): value for name, value in trial.params.items()})
        return previews


SearcherSpec = Annotated[
    GridSearcher | RandomSearcher | OptunaSearcher,
    BeforeValidator(by_name),
    Field(discriminator="name"),
]
