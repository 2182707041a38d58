"""The search space: distributions with inclusive bounds, and their Ray Tune and Optuna forms.

Keys are dotted paths into the trainable's config (`optimizer.lr`). One rule holds
everywhere: `low` and `high` are both reachable. Ray's exclusive integer upper bound is
translated here and never leaks out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from hpo.options import Options

Scalar = str | int | float | bool | None

# A stepped float is sampled from its enumerated points; past this many, a step is too fine
# to be a step and should be a plain continuous range.
MAX_STEPPED_POINTS = 100_000


class _Dist(Options):
    def values(self) -> list[Any] | None:
        """Every value the distribution can take, or None if it is continuous."""
        raise NotImplementedError

    def extremes(self) -> list[Any]:
        """Values that stand for the whole range when checking them against the config."""
        raise NotImplementedError

    def to_ray(self) -> Any:
        raise NotImplementedError

    def to_optuna(self) -> Any:
        raise NotImplementedError


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"`low <= high` must hold, but got (low={low}, high={high})")
    if log and low <= 0:
        raise ValueError(f"a log scale needs `low > 0`, but got low={low}")
    if step is not None:
        if step <= 0:
            raise ValueError(f"`step` must be positive, but got step={step}")
        if log and step != 1:
            raise ValueError("`log` and `step` cannot be combined; drop one of them")
        points = (high - low) / step
        if not math.isclose(points, round(points), abs_tol=1e-9):
            raise ValueError(
                f"`high - low` must be a multiple of `step`, but got (low={low}, high={high},"
                f" step={step}); try high={low + math.floor(points) * step:g}"
            )


class FloatDist(_Dist):
    """A float in [low, high], uniform or log-uniform, optionally on a grid of `step`."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _valid(self) -> FloatDist:
        _check_range(self.low, self.high, self.log, self.step)
        if self.step is not None and (self.high - self.low) / self.step > MAX_STEPPED_POINTS:
            raise ValueError(f"`step` gives more than {MAX_STEPPED_POINTS} points; drop `step`")
        return self

    def values(self) -> list[float] | None:
        if self.step is None:
            return None
        n = round((self.high - self.low) / self.step)
        # Rounding keeps 0.1 + 2 * 0.1 from becoming 0.30000000000000004.
        return [round(self.low + i * self.step, 12) for i in range(n + 1)]

    def extremes(self) -> list[float]:
        return [self.low, self.high]

    def to_ray(self) -> Any:
        from ray import tune

        if self.step is not None:
            return tune.choice(self.values())
        if self.log:
            return tune.loguniform(self.low, self.high)
        return tune.uniform(self.low, self.high)

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)


class IntDist(_Dist):
    """An integer in [low, high], uniform or log-uniform, optionally every `step`."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = 1

    @model_validator(mode="after")
    def _valid(self) -> IntDist:
        _check_range(self.low, self.high, self.log, self.step)
        return self

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def extremes(self) -> list[int]:
        return [self.low, self.high]

    def to_ray(self) -> Any:
        from ray import tune

        if self.step != 1:
            return tune.choice(self.values())
        # Ray's integer upper bounds are exclusive; ours are inclusive.
        if self.log:
            return tune.lograndint(self.low, self.high + 1)
        return tune.randint(self.low, self.high + 1)

    def to_optuna(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log, step=self.step)


class CategoricalDist(_Dist):
    """One of `choices`, each equally likely."""

    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> CategoricalDist:
        seen = [c for i, c in enumerate(self.choices) if c in self.choices[:i]]
        if seen:
            raise ValueError(f"`choices` must be distinct, but {seen[0]!r} appears twice")
        return self

    def values(self) -> list[Scalar]:
        return list(self.choices)

    def extremes(self) -> list[Scalar]:
        return list(self.choices)

    def to_ray(self) -> Any:
        from ray import tune

        return tune.choice(list(self.choices))

    def to_optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(tuple(self.choices))


Distribution = Annotated[FloatDist | IntDist | CategoricalDist, Field(discriminator="type")]


def optuna_name(key: str) -> str:
    """The Optuna parameter name of a dotted key; Ray turns `/` back into nesting."""
    return key.replace(".", "/")


def set_path(config: dict[str, Any], key: str, value: Any) -> None:
    """Set `config[a][b] = value` for the dotted key `a.b`, creating sections as needed."""
    *parents, leaf = key.split(".")
    for part in parents:
        config = config.setdefault(part, {})
    config[leaf] = value


def get_path(config: Mapping[str, Any], key: str) -> Any:
    """Read the value at a dotted key of a nested config."""
    for part in key.split("."):
        config = config[part]
    return config


class Space:
    """A validated search space: dotted key -> distribution."""

    def __init__(self, dists: Mapping[str, _Dist]):
        self.dists = dict(dists)

    def __iter__(self) -> Iterator[str]:
        return iter(self.dists)

    def __len__(self) -> int:
        return len(self.dists)

    def grid_size(self) -> int | None:
        """Number of points in the grid, or None if some parameter is continuous."""
        size = 1
        for dist in self.dists.values():
            values = dist.values()
            if values is None:
                return None
            size *= len(values)
        return size

    def continuous_keys(self) -> list[str]:
        return [key for key, dist in self.dists.items() if dist.values() is None]

    def ray_param_space(self, base: Mapping[str, Any], *, grid: bool) -> dict[str, Any]:
        """The base config with each searched key replaced by its Ray Tune domain."""
        from ray import tune

        config = _deep_copy(base)
        for key, dist in self.dists.items():
            set_path(config, key, tune.grid_search(dist.values()) if grid else dist.to_ray())
        return config

    def optuna_define_by_run(self) -> OptunaDefineByRun:
        """A define-by-run function for Ray's OptunaSearch: one suggestion per key."""
        return OptunaDefineByRun(
            {optuna_name(key): dist.to_optuna() for key, dist in self.dists.items()}
        )

    def params_of(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The searched parameters of a trial's config, by dotted key."""
        return {key: get_path(config, key) for key in self.dists}


class OptunaDefineByRun:
    """Suggests every parameter of the space on an Optuna trial.

    A class rather than a closure: Ray pickles the searcher, and this with it, at each save.
    """

    def __init__(self, dists: dict[str, Any]):
        self.dists = dists

    def __call__(self, trial: Any) -> None:
        for name, dist in self.dists.items():
            _suggest(trial, name, dist)


def _suggest(trial: Any, name: str, dist: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    # Ray records define-by-run values through the public `suggest_*` methods only.
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)


def _deep_copy(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in config.items()}
