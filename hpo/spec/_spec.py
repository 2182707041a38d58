"""The spec: one YAML file that says what to train, what to search, how, and for how long.

`load_spec` reads it strictly (see `yaml_source`), applies `--set` overrides, validates it
into frozen models and runs the checks that span several sections. Every problem is
reported at once, by file, line and dotted key, before anything starts.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from hpo._options import Options
from hpo.errors import SpecError, SpecIssue, SpecWarning
from hpo.pareto import Constraint, ConstraintError, parse_constraint
from hpo.search import (
    PBT_MUTABLE_PREFIXES,
    SCHEDULERS,
    SEARCHERS,
    AshaScheduler,
    Distribution,
    FifoScheduler,
    HyperbandScheduler,
    PbtScheduler,
    RandomSearcher,
    SchedulerSpec,
    SearcherSpec,
    Space,
    milestones,
    set_path,
)
from hpo.search._prior import WarmStartOptions
from hpo.spec._objectives import objective_doubts, objective_problems
from hpo.spec._ray import RayOptions
from hpo.spec._user_code import TrainableKind, code_problems, trainable_kind
from hpo.spec._yaml_source import Path as KeyPath
from hpo.spec._yaml_source import load_yaml
from hpo.trainable.config import (
    EVERY_KEY,
    KeysError,
    TrainableConfig,
    TrainableSections,
    reported_metrics,
    unreported,
)
from hpo.trainable.data import loaded_in_driver
from hpo.types import Mode

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# Trials to run when the budget names none (grid search runs its whole grid instead).
DEFAULT_NUM_SAMPLES = 20


class NoImprovement(Options):
    """Stop the search after `trials` finished trials in a row that did not improve the best."""

    trials: int = Field(ge=1, description="finished trials without an improvement (patience)")
    min_delta: float = Field(
        0.0, ge=0, description="how much better than the best a value must be to count"
    )


class StopWhen(Options):
    """Stop the whole search early; running trials end INTERRUPTED, the experiment COMPLETED
    with its stop reason stored."""

    no_improvement: NoImprovement | None = None
    reaches: float | None = Field(
        None, description="stop once the best value of the spec's metric reaches this"
    )


class Budget(Options):
    num_samples: int | None = Field(
        None, ge=1, description=f"trials to run (default {DEFAULT_NUM_SAMPLES}; grid: the grid)"
    )
    max_concurrent: int | None = Field(
        None, ge=1, description="trials at once (default: as many as the resources allow)"
    )
    time_budget_s: float | None = Field(None, gt=0, description="stop the search after this long")
    max_failures: int = Field(
        0, ge=0, description="retries of a failed trial, each from its last checkpoint"
    )
    fail_fast: int = Field(
        3,
        ge=0,
        description="stop the search when this many trials fail with the same error before "
        "any trial succeeds (a bug in the training code, not a bad configuration); 0: never",
    )
    stop_when: StopWhen | None = Field(
        None, description="stop the search before its budget: no_improvement, reaches"
    )


class Resources(Options):
    """What one trial needs; fractions let several trials share a CPU or a GPU."""

    cpu: float = Field(1, gt=0)
    gpu: float = Field(0, ge=0)
    workers: int = Field(
        1,
        ge=1,
        description="processes per trial, one DistributedDataParallel group (Ray Train); "
        "cpu and gpu are then per worker",
    )


class MlflowTracking(Options):
    """One MLflow run per trial (needs the `mlflow` extra)."""

    tracking_uri: str | None = Field(
        None, description="default: MLflow's own (MLFLOW_TRACKING_URI)"
    )
    experiment_name: str | None = Field(None, description="default: the hpo experiment's name")


class Tracking(Options):
    """Where trials are tracked besides the store."""

    tensorboard: bool = Field(
        True,
        description="one TensorBoard run per trial and an HParams table, under the experiment's folder",
    )
    mlflow: MlflowTracking | None = None


class _Where:
    """Where a spec's keys are in its file, and which overrides set keys: not part of what
    the spec says, so two specs are equal whatever they were loaded from."""

    def __init__(self, lines: dict[KeyPath, int], origins: dict[KeyPath, str]):
        self.lines, self.origins = lines, origins

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Where)

    __hash__ = None  # type: ignore[assignment]


def _constraint(text: str) -> str:
    """A constraint that parses (each one's error is at its own item of `constraints`)."""
    try:
        parse_constraint(text)
    except ConstraintError as exc:
        raise ValueError(str(exc)) from None
    return text


class Spec(TrainableSections):
    """A whole spec: the trainable's sections (its base config; `space` keys are dotted paths
    into them), and what to search, how, for how long, and where to keep the results."""

    name: str = Field(max_length=100, description="the experiment's name; also a folder name")
    metric: str = Field(
        "val_loss",
        description="the metric to optimise; with `objectives`, the one that early stopping, "
        "checkpoints and a pruning scheduler judge (set for you: scheduler.metric or the first)",
    )
    mode: Mode = Mode.MIN
    objectives: dict[str, Mode] = Field(
        default_factory=dict,
        description="several metrics to optimise at once, each with its direction "
        "(`{val_accuracy: max, n_params: min}`); the search finds their Pareto front",
    )
    constraints: list[Annotated[str, AfterValidator(_constraint)]] = Field(
        default_factory=list,
        description="comparisons of reported metrics with numbers (`'n_params <= 200000'`); "
        "trials that meet them all are feasible, and preferred",
    )
    seed: int = 0
    space: dict[str, Distribution] = Field(default_factory=dict)
    searcher: SearcherSpec = RandomSearcher(name="random")
    scheduler: SchedulerSpec = FifoScheduler(name="fifo")
    budget: Budget = Budget()
    resources: Resources = Resources()
    trainable: str | None = Field(
        None,
        description="'package.module:function' of your own training function (it calls "
        "hpo.report each epoch), or 'package.module:Class' of your subclass of hpo.Pipeline "
        "(configured by the sections above, as hpo's own is); default: hpo's PyTorch "
        "trainable, configured by the sections above",
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="the base config your own `trainable` receives"
    )
    store: str | None = Field(None, description="SQLAlchemy URL or path of the results store")
    warm_start: WarmStartOptions | None = Field(
        None, description="tell the searcher the finished trials of earlier experiments"
    )
    enqueue: list[dict[str, Any]] = Field(
        default_factory=list,
        description="hand-picked configs to run first, each {dotted key: value} of the space",
    )
    tracking: Tracking = Tracking()
    ray: RayOptions = RayOptions()

    # What `trainable` names, told once (by `load_spec`, which reports an import error at the
    # key's line; otherwise on first use).
    _kind: TrainableKind | None = PrivateAttr(None)
    # Where each key is in the file (and the overrides that set keys), for problems found
    # after loading (a `warm_start` that names no stored experiment) to point at.
    _where: _Where = PrivateAttr(default_factory=lambda: _Where({}, {}))

    def issues_at(self, found: list[tuple[KeyPath, str]]) -> list[SpecIssue]:
        """Problems at spec keys as issues with the key's line in the file it was loaded from."""
        lines, origins = self._where.lines, self._where.origins
        return [
            _place(SpecIssue(".".join(map(str, path)), message), lines, origins, path)
            for path, message in found
        ]

    def model_post_init(self, context: Any, /) -> None:
        if self.trainable is None:  # known without importing anything
            self._kind = TrainableKind.BUILTIN

    @property
    def trainable_kind(self) -> TrainableKind:
        """What the spec's trainable is: hpo's own, the user's Pipeline subclass, or the
        user's function. Imports the user's module the first time, unless `load_spec` or
        `with_trainable` told it.

        Raises:
            SpecError: `trainable` cannot be imported.
        """
        if self._kind is None:
            kind, problem = trainable_kind(self.trainable)
            if kind is None:
                raise SpecError(self.name, [SpecIssue("trainable", problem)])
            self._kind = kind
        return self._kind

    @property
    def is_pipeline(self) -> bool:
        """Whether `trainable` names the user's subclass of hpo.Pipeline (its sections then
        apply, as for hpo's own trainable, which is the base Pipeline)."""
        return self.trainable_kind is TrainableKind.PIPELINE

    def with_trainable(self, trainable: Any) -> Spec:
        """This spec, told the object its `trainable` names (the function or class a caller
        of `hpo.tune` or `hpo.resume(function=...)` holds), so that it is not imported."""
        kind, _ = trainable_kind(self.trainable, trainable)
        told = self.model_copy()
        told._kind = kind
        return told

    @model_validator(mode="before")
    @classmethod
    def _primary_objective(cls, data: Any) -> Any:
        """With several objectives, `metric` and `mode` are the one objective the single-metric
        parts judge (scheduler.metric, else the first), so that those parts need no change."""
        if not isinstance(data, dict) or not isinstance(data.get("objectives"), dict):
            return data
        objectives = data["objectives"]
        scheduler = data.get("scheduler")
        chosen = scheduler.get("metric") if isinstance(scheduler, dict) else None
        primary = data.get("metric", chosen if chosen in objectives else next(iter(objectives), None))
        if primary not in objectives:
            return data  # the checks say what is wrong
        direction = objectives[primary]
        mode = direction if direction in ("min", "max", *Mode) else data.get("mode", Mode.MIN)
        return {**data, "metric": primary, "mode": mode}

    @property
    def is_multi_objective(self) -> bool:
        """Whether the spec has several objectives (one objective is the single-metric form)."""
        return len(self.objectives) > 1

    def objective_modes(self) -> dict[str, Mode]:
        """Each objective's direction: `objectives`, or the single `metric` and `mode`."""
        return dict(self.objectives) if self.objectives else {self.metric: self.mode}

    def parsed_constraints(self) -> list[Constraint]:
        """The constraints, parsed (they were checked when the spec loaded)."""
        return [parse_constraint(text) for text in self.constraints]

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not _SAFE_NAME.fullmatch(name) or ".." in name:
            raise ValueError(
                f"{name!r} cannot be an experiment name: names become folder names, so use "
                "letters, digits, '_', '-' and '.', starting with a letter or digit, without '..'"
            )
        return name

    def base_config(self) -> dict[str, Any]:
        """The trainable's config before any parameter is searched.

        A section that chooses a kind holds the options its kind reads and those the spec
        sets (see `hpo.trainable.config`), and every searched key: a trial that the space
        does not give a value at a searched key (under `when:`) trains with its default.
        """
        if not self.trainable_kind.uses_sections:
            return _plain(self.config)
        include = set(TrainableSections.model_fields)
        sections = self.model_dump(mode="json", include=include)
        every = self.model_dump(mode="json", include=include, context=EVERY_KEY)
        for key in self.space:
            section, _, rest = key.partition(".")
            option = rest.partition(".")[0]
            if option in every.get(section, {}):
                sections[section].setdefault(option, every[section][option])
        # Early stopping and the plateau LR scheduler watch the spec's metric.
        config = {**sections, "seed": self.seed, "metric": self.metric, "mode": self.mode.value}
        if self.is_multi_objective:  # each one must be finite (see `hpo.trainable.finite`)
            config["objectives"] = list(self.objectives)
        return config

    def search_space(self) -> Space:
        return Space(self.space)

    def num_trials(self) -> int:
        if self.searcher.needs_grid:
            return self.search_space().grid_size() or 1
        if not self.search_space().searched():
            # Nothing to search: the base config once, or repeated (with other trial seeds).
            return self.budget.num_samples or 1
        return self.budget.num_samples or DEFAULT_NUM_SAMPLES


def load_spec(
    source: str | Path | Mapping[str, Any],
    overrides: Sequence[str] | Mapping[str, Any] = (),
    *,
    trainable: Any = None,
) -> Spec:
    """Read, override and validate a spec.

    The code the spec names by import path (`trainable`, `data.name`, `model.name`,
    `loader.collate`, transforms) is imported, never called; a spec naming none imports
    nothing. What is valid but likely not meant is a `SpecWarning` with its file and line.

    Args:
        source: a path to a YAML file, or the spec as a dict.
        overrides: `key=value` strings (values are YAML), or a mapping of dotted keys to values.
        trainable: the function or `hpo.Pipeline` subclass that the spec's `trainable`
            names, when the caller holds it (`hpo.tune`): it is then not imported.

    Raises:
        SpecError: listing every problem, each with its file, line and dotted key.
    """
    if isinstance(source, Mapping):
        name, data, lines = "<dict>", _plain(source), {}
    else:
        path = Path(source)
        name = str(source)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(name, [SpecIssue("", "file not found")]) from None
        except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
            raise SpecError(name, [SpecIssue("", f"cannot read the file ({exc})")]) from None
        data, lines = load_yaml(text, name)
        if data is None:
            raise SpecError(
                name,
                [
                    SpecIssue(
                        "",
                        "the spec is empty; it needs at least what to train and search "
                        "(see search_spaces/ for examples, or `hpo schema` for every key)",
                        1,
                    )
                ],
            )
        if isinstance(data, dict):
            data.setdefault("name", path.stem)
    if not isinstance(data, dict):
        raise SpecError(name, [SpecIssue("", "a spec must be a mapping of keys to values", 1)])

    origins: dict[KeyPath, str] = {}
    for key, value, text in _parse_overrides(overrides, name):
        origins[_set_override(data, key, value)] = text

    def place(found: list[tuple[KeyPath, str]]) -> list[SpecIssue]:
        return [
            _place(SpecIssue(".".join(map(str, path)), message), lines, origins, path)
            for path, message in found
        ]

    # Which sections apply depends on what `trainable` is, told once, here (a value that is
    # not a string is pydantic's to report).
    reference = data.get("trainable")
    kind, problem = trainable_kind(reference if isinstance(reference, str) else None, trainable)
    own = [(("trainable",), problem)] if problem else []
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        issues = [issue for err in exc.errors() for issue in _issues(err, lines, origins)]
        # The checks across sections still run on the rest of the file, so that one attempt
        # shows every problem: the keys in error are dropped and take their defaults.
        bad = [path for err in exc.errors() for path in _document_paths(err, lines)]
        rest = _without(data, bad)
        try:
            partial = Spec.model_validate(rest)
        except ValidationError:
            partial = None
        if partial is not None:
            partial._kind = kind
            own += _cross_check(partial)
        reported = {issue.key for issue in issues}
        issues += [issue for issue in place(own) if issue.key not in reported]
        raise SpecError(name, issues) from None
    spec._kind = kind
    spec._where = _Where(lines, origins)
    issues = place(own + _cross_check(spec))
    if issues:
        raise SpecError(name, issues)
    for issue in place(_doubts(spec)):
        warnings.warn(SpecWarning(issue.render(name)), stacklevel=2)
    return spec


def _without(data: dict[str, Any], paths: list[KeyPath]) -> dict[str, Any]:
    """A copy of the spec data without the keys at `paths` (a space entry goes whole)."""
    rest = _plain(data)
    for path in paths:
        path = path[:2] if path[:1] == ("space",) else path
        node: Any = rest
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and path:
            node.pop(path[-1], None)
    return rest


def _plain(value: Any) -> Any:
    """A deep copy of nested dicts and lists, so overrides never touch the caller's dict."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- overrides -------------------------------------------------------------------------------


def _parse_overrides(
    overrides: Sequence[str] | Mapping[str, Any], source: str
) -> list[tuple[str, Any, str]]:
    if isinstance(overrides, Mapping):
        return [(key, value, f"{key}={value!r}") for key, value in overrides.items()]
    parsed = []
    for text in overrides:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            issue = SpecIssue(
                "", f"override {text!r} must look like key=value, e.g. budget.num_samples=50"
            )
            raise SpecError(source, [issue])
        value, _ = load_yaml(raw, f"--set {text}")
        parsed.append((key.strip(), value, text))
    return parsed


def _set_override(data: dict[str, Any], key: str, value: Any) -> KeyPath:
    """Set a dotted key in the spec data and return its path.

    Space keys contain dots themselves (`space.optimizer.lr.high`), so each step takes the
    longest existing key that matches.
    """
    parts = key.split(".")
    node: Any = data
    path: list[str] = []
    while parts:
        if not isinstance(node, dict):
            raise SpecError("--set", [SpecIssue(key, f"{'.'.join(path)} is not a section")])
        width = next(
            (n for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in node),
            # A new space parameter: its whole dotted name is one key when given a mapping.
            len(parts) - (0 if isinstance(value, dict) else 1) if path == ["space"] else 1,
        )
        width = max(width, 1)
        part, parts = ".".join(parts[:width]), parts[width:]
        path.append(part)
        if parts:
            if isinstance(node.get(part), str) and len(_models_at(tuple(path))) > 1:
                node[part] = {"name": node[part]}  # the short form `searcher: optuna`
            node = node.setdefault(part, {})
        else:
            if part in ("name", "type") and node.get(part) != value:
                _switch_member(node, tuple(path[:-1]), part, value)
            node[part] = value
    return tuple(path)


def _switch_member(section: dict[str, Any], path: KeyPath, tag: str, value: Any) -> None:
    """Overriding the tag of a tagged section (`searcher.name`, `space.x.type`) chooses another
    member: keep only the keys the new member has, so its predecessor's options do not fail it."""
    members = [m for m in _models_at(path) if _tag_of(m) == value]
    if len(_models_at(path)) > 1 and members:
        valid = {_key_name(f, i) for f, i in members[0].model_fields.items()}
        for key in [k for k in section if k not in valid]:
            del section[key]


# --- turning problems into messages ----------------------------------------------------------


def _issues(err: Any, lines: dict[KeyPath, int], origins: dict[KeyPath, str]) -> list[SpecIssue]:
    """The issues of one pydantic error: one, or one per key a `KeysError` names."""
    keys = _keys_error(err)
    if keys is not None:
        path = _document_path(err["loc"], lines)
        return [
            _place(
                SpecIssue(".".join(map(str, (*path, key))), message), lines, origins, (*path, key)
            )
            for key, message in keys.messages.items()
        ]
    return [_issue(err, lines, origins)]


def _document_paths(err: Any, lines: dict[KeyPath, int]) -> list[KeyPath]:
    """The keys of the document an error is at (those a `KeysError` names, else its own)."""
    path = _document_path(err["loc"], lines)
    keys = _keys_error(err)
    return [(*path, key) for key in keys.messages] if keys is not None else [path]


def _keys_error(err: Any) -> KeysError | None:
    error = (err.get("ctx") or {}).get("error")
    return error if isinstance(error, KeysError) else None


def _issue(err: Any, lines: dict[KeyPath, int], origins: dict[KeyPath, str]) -> SpecIssue:
    path = _document_path(err["loc"], lines)
    kind, message = err["type"], err["msg"]
    if kind == "extra_forbidden":
        message = _unknown_key_message(err["loc"])
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "union_tag_invalid":
        ctx = err["ctx"]
        registry = _TAGGED_REGISTRIES.get(path)
        what = ctx["discriminator"].strip("'")
        message = (
            registry.unknown(ctx["tag"])
            if registry is not None
            else f"unknown {what} {ctx['tag']!r}; expected one of: {ctx['expected_tags']}"
        )
    else:
        message = message.removeprefix("Value error, ")
        if not isinstance(err.get("input"), dict | list):
            message = f"{message} (got {err['input']!r})"
    return _place(SpecIssue(".".join(map(str, path)), message), lines, origins, path)


def _place(
    issue: SpecIssue,
    lines: dict[KeyPath, int],
    origins: dict[KeyPath, str],
    path: KeyPath,
) -> SpecIssue:
    """Give an issue the line of its key (or of the nearest enclosing key), or its override."""
    for n in range(len(path), -1, -1):
        if path[:n] in origins:
            return SpecIssue(issue.key, f"{issue.message} (from --set {origins[path[:n]]})")
        if path[:n] in lines:
            return SpecIssue(issue.key, issue.message, lines[path[:n]])
    return issue


def _document_path(loc: tuple[str | int, ...], lines: dict[KeyPath, int]) -> KeyPath:
    """Drop what pydantic adds to a location (union tags) so it names keys of the document."""
    path: tuple[str | int, ...] = ()
    for part in loc:
        if (*path, part) in lines or not _is_union_tag(part):
            path = (*path, part)
    return path


def _is_union_tag(part: str | int) -> bool:
    return part in _UNION_TAGS or str(part).startswith("function-")


def _unknown_key_message(loc: tuple[str | int, ...]) -> str:
    valid = _valid_keys(loc[:-1])
    close = _closest(str(loc[-1]), valid)
    message = f"unknown key; did you mean {close!r}?" if close else "unknown key;"
    return f"{message} valid keys here: {', '.join(valid)}" if valid else message.rstrip(";")


def _closest(word: str, valid: list[str]) -> str | None:
    """The valid key a typo most likely meant: a close spelling, or an abbreviation of it."""
    close = difflib.get_close_matches(word, valid, n=1, cutoff=0.5)
    if close:
        return close[0]
    return next((key for key in valid if key.startswith(word) or word.startswith(key)), None)


def _valid_keys(loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the model at a pydantic location (empty if it cannot be told)."""
    models = _models_at(loc)
    return (
        sorted({_key_name(f, i) for m in models for f, i in m.model_fields.items()})
        if len(models) == 1
        else []
    )


def _key_name(field: str, info: Any) -> str:
    return info.alias or field


def _models_at(loc: tuple[str | int, ...]) -> list[type[BaseModel]]:
    """The models a section at `loc` may be: one, or the members of a tagged union."""
    candidates: list[Any] = [Spec]
    for part in loc:
        step: list[Any] = []
        for tp in candidates:
            for model in _models_in(tp):
                field = model.model_fields.get(part) if isinstance(part, str) else None
                if field is not None:
                    step.append(field.annotation)
                elif _tag_of(model) == part:
                    step.append(model)
            if typing.get_origin(tp) is dict:  # a key of a mapping such as `space`
                step.append(typing.get_args(tp)[1])
        candidates = step
    return [m for tp in candidates for m in _models_in(tp)]


def _models_in(tp: Any) -> list[type[BaseModel]]:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _models_in(arg)]
    return []


def _tag_of(model: type[BaseModel]) -> str | None:
    for field in ("name", "type"):
        info = model.model_fields.get(field)
        if info is not None and typing.get_origin(info.annotation) is typing.Literal:
            return typing.get_args(info.annotation)[0]
    return None


# --- checks across sections ------------------------------------------------------------------


def _cross_check(spec: Spec) -> list[tuple[KeyPath, str]]:
    """Problems that span sections, each at the path of the key to change.

    `spec._kind` is None when `trainable` could not be imported (reported at its key): the
    checks that depend on what it is are left until it imports.
    """
    kind = spec._kind
    issues: list[tuple[KeyPath, str]] = objective_problems(
        spec, reported_metrics(spec) if kind is not None and kind.uses_sections else None
    )
    if kind is TrainableKind.FUNCTION:
        issues += _check_user_trainable(spec)
    elif kind is not None:
        issues += _check_builtin_trainable(spec)
    if kind is None or kind.uses_sections:
        issues += code_problems(spec)
    space = spec.search_space()
    issues += [(("space", key, "when"), message) for key, message in space.problems]
    if not space.problems:
        issues += _check_enqueue(spec, space)
    for key, dist in space.dists.items():
        if spec.searcher.needs_grid and dist.points() is None:
            issues.append(
                (
                    ("space", key),
                    f"is continuous ({dist.type} from {dist.low} to {dist.high}), but grid search "
                    "needs a finite set of values; add `step`, use `type: categorical`, or choose "
                    "searcher random or optuna",
                )
            )
        if not spec.searcher.needs_grid and dist.type == "grid":
            issues.append(
                (
                    ("space", key),
                    f"`type: grid` is for the grid searcher, not {spec.searcher.name}; "
                    "use `type: categorical` to sample among these values",
                )
            )
    if spec.searcher.needs_grid and not space.continuous_keys():
        size = space.grid_size()
        if spec.budget.num_samples not in (None, size):
            issues.append(
                (
                    ("budget", "num_samples"),
                    f"grid search runs every point of its grid once ({size} points); "
                    f"remove budget.num_samples or set it to {size}",
                )
            )
    if isinstance(spec.scheduler, AshaScheduler) and kind is not None and kind.uses_sections:
        asha, epochs = spec.scheduler, spec.training.epochs
        max_t = asha.max_t or epochs
        if asha.max_t is not None and asha.max_t > epochs:
            issues.append(
                (
                    ("scheduler", "max_t"),
                    f"max_t={asha.max_t} exceeds training.epochs={epochs}; "
                    f"a trial never reports more epochs than it trains; set it to at most {epochs}",
                )
            )
        if asha.grace_period > max_t:
            issues.append(
                (
                    ("scheduler", "grace_period"),
                    f"grace_period={asha.grace_period} exceeds the last rung ({max_t} epochs); "
                    f"set it to at most {max_t}",
                )
            )
        elif isinstance(asha, HyperbandScheduler) and not milestones(
            asha.grace_period, asha.reduction_factor, max_t, asha.brackets - 1
        ):
            fit = next(
                s
                for s in range(asha.brackets, 0, -1)
                if milestones(asha.grace_period, asha.reduction_factor, max_t, s - 1)
            )
            issues.append(
                (
                    ("scheduler", "brackets"),
                    f"brackets={asha.brackets}: the last bracket's first rung (epoch "
                    f"{asha.grace_period * asha.reduction_factor ** (asha.brackets - 1):g}) is "
                    f"past the last rung ({max_t} epochs), so its trials would never be judged; "
                    f"set brackets to at most {fit}",
                )
            )
    if isinstance(spec.scheduler, PbtScheduler):
        issues += _check_pbt(spec, kind)
    return issues


def _check_pbt(spec: Spec, kind: TrainableKind | None) -> list[tuple[KeyPath, str]]:
    """PBT clones trials from checkpoints and mutates keys of the space: both must hold."""
    pbt, space = spec.scheduler, spec.search_space()
    assert isinstance(pbt, PbtScheduler)
    interval = pbt.perturbation_interval
    issues: list[tuple[KeyPath, str]] = []
    if kind is TrainableKind.FUNCTION:
        issues.append(
            (
                ("scheduler", "name"),
                "PBT continues a trial from another trial's checkpoint, which hpo writes and "
                "loads only for its own trainable or a subclass of hpo.Pipeline; for your "
                "function choose asha, hyperband or median",
            )
        )
    elif kind is not None:
        every = spec.checkpoint.every
        if every == 0:
            # At the checkpoint key where the file has one; else at the scheduler's line.
            where = (
                ("checkpoint", "every") if "checkpoint" in spec.model_fields_set else ("scheduler",)
            )
            issues.append(
                (
                    where,
                    "PBT needs checkpoints: at each perturbation a trial goes on from another "
                    f"trial's checkpoint of that epoch; set checkpoint.every to {interval} "
                    "(scheduler.perturbation_interval) or a divisor of it",
                )
            )
        elif interval % every:
            issues.append(
                (
                    ("scheduler", "perturbation_interval"),
                    f"perturbation_interval={interval} is not a multiple of checkpoint.every="
                    f"{every}, so trials have no checkpoint at some perturbations; set it to "
                    f"{interval - interval % every or every} or {interval + every - interval % every}",
                )
            )
        if spec.resources.workers > 1:
            issues.append(
                (
                    ("resources", "workers"),
                    "PBT runs one process per trial; remove resources.workers",
                )
            )
    keys = pbt.mutated_keys(list(space))
    if not keys:
        issues.append(
            (
                ("scheduler", "mutate"),
                "PBT has nothing to mutate: no key of `space` is under optimizer.; add one "
                "(e.g. optimizer.lr: {type: float, low: 1e-4, high: 0.1, log: true})",
            )
        )
    for key in keys:
        dist = space.dists.get(key)
        points = None if dist is None else dist.points()
        if dist is None:
            message = (
                f"{key!r} has no distribution in `space` to mutate within; add it to `space` "
                f"or leave it out of scheduler.mutate (space keys: {', '.join(space) or 'none'})"
            )
        elif points is not None and len(points) < 2:
            message = (
                f"{key!r} has a single value in `space`: PBT has no other value to move it to; "
                "give it a range, or leave it out of scheduler.mutate"
            )
        elif dist.conditions():
            message = (
                f"{key!r} applies only `when` another key has some value; PBT would set it "
                "where it does not apply: leave it out of scheduler.mutate"
            )
        elif not key.startswith(PBT_MUTABLE_PREFIXES):
            message = (
                f"PBT cannot change {key!r} while a trial trains: a trial goes on from another's "
                "weights, which keep their shape; only the optimizer's keys "
                f"({', '.join(PBT_MUTABLE_PREFIXES)}) can change; leave it out of scheduler.mutate"
            )
        else:
            continue
        issues.append((("scheduler", "mutate"), message))
    return issues


def _check_enqueue(spec: Spec, space: Space) -> list[tuple[KeyPath, str]]:
    """Each hand-picked config is a trial of the space: its keys, values inside the ranges."""
    issues: list[tuple[KeyPath, str]] = []
    for i, params in enumerate(spec.enqueue):
        problem = space.outside(params)
        if problem is not None:
            key, message = problem
            where: KeyPath = ("enqueue", i, key) if key in params else ("enqueue", i)
            issues.append((where, f"{message}; each enqueued config must be a trial of `space`"))
    return issues


def _check_builtin_trainable(spec: Spec) -> list[tuple[KeyPath, str]]:
    """hpo's own trainable, or the user's Pipeline subclass: the metric is one it reports,
    space keys are keys of its config."""
    issues: list[tuple[KeyPath, str]] = []
    unreported_metric = unreported(spec.metric, spec)
    # With objectives, `metric` is derived from them, and they are checked at their own keys.
    if unreported_metric and not spec.objectives:
        issues.append((("metric",), unreported_metric))
    if spec.config:
        issues.append(
            (
                ("config",),
                "`config` is the base config of your own `trainable`; hpo's trainable is "
                f"configured by its sections ({', '.join(TrainableSections.model_fields)})",
            )
        )
    return issues + _check_space_keys(spec)


def _check_user_trainable(spec: Spec) -> list[tuple[KeyPath, str]]:
    """A user's function: its metrics and config keys are its own; its length must be told."""
    issues: list[tuple[KeyPath, str]] = [
        (
            (section,),
            f"`{section}` configures hpo's own trainable, not {spec.trainable}; put your "
            "function's constants under `config` (or make it a subclass of hpo.Pipeline, "
            "which the sections configure)",
        )
        for section in TrainableSections.model_fields
        if section in spec.model_fields_set
    ]
    if spec.resources.workers > 1:
        issues.append(
            (
                ("resources", "workers"),
                "several workers per trial (distributed data parallel) need hpo's own "
                "trainable or a subclass of hpo.Pipeline; your function runs as one process: "
                "remove resources.workers",
            )
        )
    return issues


def _doubts(spec: Spec) -> list[tuple[KeyPath, str]]:
    """What is valid but likely not meant, each at the key to change (shown as warnings)."""
    doubts: list[tuple[KeyPath, str]] = objective_doubts(spec)
    loader, resources = spec.loader, spec.resources
    # hpo's own loop on hpo's in-memory datasets batches on the device: no loader to warn of.
    in_memory = spec.trainable_kind is TrainableKind.BUILTIN and loaded_in_driver(spec.data)
    if spec.trainable_kind.uses_sections and not in_memory and loader.num_workers > resources.cpu:
        per = "per worker of the trial's DDP group" if resources.workers > 1 else "per trial"
        doubts.append(
            (
                ("loader", "num_workers"),
                f"{loader.num_workers} loader processes, but resources.cpu is {resources.cpu:g} "
                f"{per}: they would share those CPUs with the training process, and trials "
                f"placed beside it; set resources.cpu to {loader.num_workers + 1} (the loader's "
                f"processes and the training process) or num_workers to at most "
                f"{math.floor(resources.cpu)}",
            )
        )
    return doubts


def _check_space_keys(spec: Spec) -> list[tuple[KeyPath, str]]:
    """Check every searched key against the trainable's config, at the ends of its range."""
    issues = []
    base = spec.base_config()
    # Errors of the base config alone are reported at their own keys (the metric, say).
    known = {(e["loc"], e["type"]) for e in _config_errors(base)}
    for key, dist in spec.space.items():
        for value in dist.extremes():
            config = _plain(base)
            try:
                set_path(config, key, value)
            except (TypeError, AttributeError) as exc:
                issues.append((("space", key), _space_key_message(key, value, exc)))
                break
            errors = [e for e in _config_errors(config) if (e["loc"], e["type"]) not in known]
            if errors:
                issues.append((("space", key), _space_key_message(key, value, errors[0])))
                break
    return issues


def _config_errors(config: dict[str, Any]) -> list[Any]:
    try:
        TrainableConfig.model_validate(config)
    except ValidationError as exc:
        return exc.errors()
    return []


def _space_key_message(key: str, value: Any, err: Exception | dict[str, Any]) -> str:
    """Why a value at a space key does not fit the config: a pydantic error, or a bad path."""
    if isinstance(err, Exception):
        sections = ", ".join(TrainableSections.model_fields)
        return f"not a dotted path into the trainable's config (sections: {sections})"
    if err["type"] == "extra_forbidden":
        return (
            f"{'.'.join(map(str, err['loc']))} is not a key of the trainable's config; "
            + _unknown_key_message(err["loc"]).removeprefix("unknown key;").strip()
        )
    return f"the value {value!r} is invalid for {key}: {err['msg']}"


# The sections that are one of a registry's option models, by their key.
_TAGGED_REGISTRIES = {("searcher",): SEARCHERS, ("scheduler",): SCHEDULERS}

# The names pydantic puts into a location to say which member of a union it tried.
_UNION_TAGS = {
    _tag_of(m) for tp in (SearcherSpec, SchedulerSpec, Distribution) for m in _models_in(tp)
}
