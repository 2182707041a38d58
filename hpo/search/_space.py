"""The search space: distributions with inclusive bounds, conditions, and their Ray and Optuna forms.

Keys are dotted paths into the trainable's config (`optimizer.lr`). One rule holds
everywhere: `low` and `high` are both reachable; Ray's exclusive integer upper bound is
translated here and never leaks out. A parameter with `when: {optimizer.name: sgd}` is
sampled, and set in the trial's config, only while its condition holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from hpo._options import Options

Scalar = str | int | float | bool | None
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

# A stepped float is sampled from its enumerated points; past this many, a step is too fine
# to be a step and should be a plain continuous range.
MAX_STEPPED_POINTS = 100_000


class Dist(Options):
    # Conditions on categorical parameters: every one must hold for this one to be active.
    when: dict[str, Scalar | list[Scalar]] | None = Field(
        None, description="sample this parameter only when each parent has one of these values"
    )

    def points(self) -> list[Any] | None:
        """Every value the distribution can take, or None if it is continuous."""
        raise NotImplementedError

    def extremes(self) -> list[Any]:
        """Values that stand for the whole range when checking them against the config."""
        return self.points() or []

    def contains(self, value: Any) -> bool:
        """Whether `value` is one this distribution can take (a stored trial's, say)."""
        return any(_same(value, point) for point in self.points() or [])

    def to_ray(self) -> Any:
        """Ray Tune's domain for this distribution."""
        raise NotImplementedError

    def to_optuna(self) -> Any:
        """Optuna's distribution for this one, or None for a constant (nothing to search)."""
        raise NotImplementedError

    def conditions(self) -> dict[str, list[Scalar]]:
        """Parent key -> the values for which this parameter is active."""
        return {
            parent: allowed if isinstance(allowed, list) else [allowed]
            for parent, allowed in (self.when or {}).items()
        }


def _same(value: Any, point: Any) -> bool:
    """Equal as values of a parameter: `True` is not 1, and floats compare to rounding."""
    if isinstance(value, bool) or isinstance(point, bool):
        return value is point
    if isinstance(value, float) or isinstance(point, float):
        return _is_number(value) and _is_number(point) and math.isclose(value, point)
    return value == point


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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


class FloatDist(Dist):
    """A float in [low, high], uniform or log-uniform, optionally on a grid of `step`."""

    type: Literal["float"]
    low: FiniteFloat
    high: FiniteFloat
    log: bool = False
    step: FiniteFloat | None = None

    @model_validator(mode="after")
    def _valid(self) -> FloatDist:
        _check_range(self.low, self.high, self.log, self.step)
        if self.step is not None and (self.high - self.low) / self.step > MAX_STEPPED_POINTS:
            raise ValueError(f"`step` gives more than {MAX_STEPPED_POINTS} points; drop `step`")
        return self

    def points(self) -> list[float] | None:
        if self.step is None:
            return None
        n = round((self.high - self.low) / self.step)
        # Rounding keeps 0.1 + 2 * 0.1 from becoming 0.30000000000000004.
        return [round(self.low + i * self.step, 12) for i in range(n + 1)]

    def extremes(self) -> list[float]:
        return [self.low, self.high]

    def contains(self, value: Any) -> bool:
        if self.step is not None:
            return super().contains(value)
        return _is_number(value) and self.low <= value <= self.high

    def to_ray(self) -> Any:
        from ray import tune

        if self.step is not None:
            return tune.choice(self.points())
        if self.log:
            return tune.loguniform(self.low, self.high)
        return tune.uniform(self.low, self.high)

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)


class IntDist(Dist):
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

    def points(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def extremes(self) -> list[int]:
        return [self.low, self.high]

    def contains(self, value: Any) -> bool:
        integral = _is_number(value) and float(value).is_integer()
        return integral and self.low <= value <= self.high and (value - self.low) % self.step == 0

    def to_ray(self) -> Any:
        from ray import tune

        if self.step != 1:
            return tune.choice(self.points())
        # Ray's integer upper bounds are exclusive; ours are inclusive.
        if self.log:
            return tune.lograndint(self.low, self.high + 1)
        return tune.randint(self.low, self.high + 1)

    def to_optuna(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log, step=self.step)


def _distinct(values: list[Any], name: str) -> None:
    seen = [c for i, c in enumerate(values) if c in values[:i]]
    if seen:
        raise ValueError(f"`{name}` must be distinct, but {seen[0]!r} appears twice")


class CategoricalDist(Dist):
    """One of `choices`, each equally likely."""

    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> CategoricalDist:
        _distinct(self.choices, "choices")
        return self

    def points(self) -> list[Scalar]:
        return list(self.choices)

    def to_ray(self) -> Any:
        from ray import tune

        return tune.choice(list(self.choices))

    def to_optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(tuple(self.choices))


class GridDist(CategoricalDist):
    """Values the grid searcher enumerates (`type: grid`); the other searchers refuse it."""

    type: Literal["grid"]  # type: ignore[assignment]
    choices: list[Scalar] = Field(min_length=1, alias="values")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ConstantDist(Dist):
    """A value that is set, not searched (`type: constant`, or a bare value in `space`)."""

    type: Literal["constant"]
    value: Any

    def points(self) -> list[Any]:
        return [self.value]

    def to_ray(self) -> Any:
        return self.value

    def to_optuna(self) -> None:
        return None


def _bare_value_is_constant(value: Any) -> Any:
    return value if isinstance(value, dict) else {"type": "constant", "value": value}


# The discriminator sits inside the before-validator, so a bare value becomes a constant first.
Distribution = Annotated[
    Annotated[
        FloatDist | IntDist | CategoricalDist | GridDist | ConstantDist, Field(discriminator="type")
    ],
    BeforeValidator(_bare_value_is_constant),
]


def config_key(params: Mapping[str, Any]) -> str:
    """One string per distinct config: equal params give equal keys, in any key order."""
    return json.dumps(dict(params), sort_keys=True, default=str)


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


def nest(params: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys to a nested config: {"a.b": 1} -> {"a": {"b": 1}}."""
    config: dict[str, Any] = {}
    for key, value in params.items():
        set_path(config, key, value)
    return config


class Space:
    """A validated search space: dotted key -> distribution, parents before their children."""

    def __init__(self, dists: Mapping[str, Dist]):
        self.problems: list[tuple[str, str]] = []  # (key, message) of conditions that cannot hold
        self.dists = self._ordered(dict(dists))

    def __iter__(self) -> Iterator[str]:
        return iter(self.dists)

    def __len__(self) -> int:
        return len(self.dists)

    def _ordered(self, dists: dict[str, Dist]) -> dict[str, Dist]:
        """Check every `when` and order keys so that each parent comes before its children."""
        for key, dist in dists.items():
            for parent, allowed in dist.conditions().items():
                parent_dist = dists.get(parent)
                if parent_dist is None:
                    self.problems.append(
                        (key, f"`when` names {parent!r}, which is not a parameter of `space`")
                    )
                elif parent == key:
                    self.problems.append((key, "a parameter cannot depend on itself"))
                elif not isinstance(parent_dist, CategoricalDist | ConstantDist):
                    self.problems.append(
                        (
                            key,
                            f"`when` needs a categorical parent, but {parent!r} is {parent_dist.type}",
                        )
                    )
                else:
                    unknown = [v for v in allowed if v not in parent_dist.points()]
                    if unknown:
                        self.problems.append(
                            (
                                key,
                                f"`when` expects {parent!r} to be {unknown[0]!r}, which is not among "
                                f"its values {parent_dist.points()}",
                            )
                        )
        ordered: dict[str, Dist] = {}
        pending = dict(dists)
        while pending:
            ready = [
                k
                for k, d in pending.items()
                if all(p in ordered or p not in dists for p in d.conditions())
            ]
            if not ready:  # a cycle: report it and keep the file's order
                self.problems += [(k, "`when` conditions form a cycle") for k in pending]
                ordered.update(pending)
                break
            for key in ready:
                ordered[key] = pending.pop(key)
        return ordered

    def is_active(self, key: str, params: Mapping[str, Any]) -> bool:
        """Whether `key` is sampled, given the values of the parameters before it."""
        return all(
            parent in params and params[parent] in allowed
            for parent, allowed in self.dists[key].conditions().items()
        )

    def searched(self) -> list[str]:
        """The keys that are searched (not constants)."""
        return [key for key, dist in self.dists.items() if not isinstance(dist, ConstantDist)]

    def continuous_keys(self) -> list[str]:
        return [key for key, dist in self.dists.items() if dist.points() is None]

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every combination of active values, each once (a child only under its parents' values)."""

        def expand(keys: list[str], params: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if not keys:
                yield dict(params)
                return
            key, rest = keys[0], keys[1:]
            if not self.is_active(key, params):
                yield from expand(rest, params)
                return
            for value in self.dists[key].points() or []:
                yield from expand(rest, {**params, key: value})

        return expand(list(self.dists), {})

    def grid_size(self) -> int | None:
        """Number of points in the grid, or None if some parameter is continuous."""
        if self.continuous_keys():
            return None
        return sum(1 for _ in self.grid())

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One random configuration of the active parameters, drawn with Ray Tune's samplers."""
        params: dict[str, Any] = {}
        for key, dist in self.dists.items():
            if self.is_active(key, params):
                domain = dist.to_ray()
                params[key] = (
                    domain.sample(random_state=rng) if hasattr(domain, "sample") else domain
                )
        return {key: _plain_value(value) for key, value in params.items()}

    def optuna_define_by_run(self) -> OptunaDefineByRun:
        """A define-by-run function for Optuna: one suggestion per active key."""
        return OptunaDefineByRun(self)

    def fit(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """A stored trial's `params` as a trial of this space: its active keys, each with a
        value the distribution can take (keys this space does not search are dropped), or
        None where an active key is missing or has a value outside its distribution."""
        fitted: dict[str, Any] = {}
        for key, dist in self.dists.items():
            if not self.is_active(key, fitted):
                continue
            if isinstance(dist, ConstantDist):
                if key in params and not _same(params[key], dist.value):
                    return None
                fitted[key] = dist.value
            elif key in params and dist.contains(params[key]):
                fitted[key] = params[key]
            else:
                return None
        return fitted

    def outside(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        """Why hand-picked `params` are not a trial of this space: (key, message), or None."""
        unknown = [key for key in params if key not in self.dists]
        if unknown:
            return unknown[0], f"{unknown[0]!r} is not a parameter of `space` ({', '.join(self)})"
        active: dict[str, Any] = {}
        for key, dist in self.dists.items():
            if not self.is_active(key, active):
                if key in params:
                    return key, f"{key!r} is inactive here: its `when` does not hold"
                continue
            if key not in params:
                if isinstance(dist, ConstantDist):
                    active[key] = dist.value
                    continue
                return key, f"{key!r} is missing; every active parameter needs a value"
            if not dist.contains(params[key]):
                return key, f"{params[key]!r} is outside {key}'s {_describe_dist(dist)}"
            active[key] = params[key]
        return None

    def params_of(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The active searched parameters of a trial's config, by dotted key."""
        params: dict[str, Any] = {}
        for key in self.dists:
            if self.is_active(key, params):
                params[key] = get_path(config, key)
        return params


def _describe_dist(dist: Dist) -> str:
    if isinstance(dist, FloatDist | IntDist):
        step = f" every {dist.step}" if dist.step not in (None, 1) else ""
        return f"range [{dist.low}, {dist.high}]{step}"
    if isinstance(dist, ConstantDist):
        return f"constant {dist.value!r}"
    return f"values {dist.points()}"


def _plain_value(value: Any) -> Any:
    """numpy scalars from Ray's samplers as Python values (they go to YAML, JSON and SQL)."""
    return value.item() if isinstance(value, np.generic) else value


class OptunaDefineByRun:
    """Suggests every active parameter of a space on an Optuna trial; returns the constants.

    A class rather than a closure: Ray pickles the searcher, and this with it, at each save.
    Parameter names are dotted keys with `/` (Ray nests them back into the config).
    """

    def __init__(self, space: Space):
        self.space = space
        self.dists = {key: dist.to_optuna() for key, dist in space.dists.items()}

    def __call__(self, trial: Any) -> dict[str, Any]:
        params: dict[str, Any] = {}
        constants: dict[str, Any] = {}
        for key, dist in self.dists.items():
            if not self.space.is_active(key, params):
                continue
            if dist is None:
                params[key] = constants[optuna_name(key)] = self.space.dists[key].value
            else:
                params[key] = _suggest(trial, optuna_name(key), dist)
        return constants

    def params(self, trial: Any) -> dict[str, Any]:
        """The dotted-key params of an Optuna trial this function has run on."""
        return {name.replace("/", "."): value for name, value in trial.params.items()}


def _suggest(trial: Any, name: str, dist: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    # Ray records define-by-run values through the public `suggest_*` methods only.
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
