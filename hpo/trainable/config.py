"""The trainable's config: what one trial trains, as typed, frozen sections.

A spec's `data`, `loader`, `transforms`, `augment`, `model`, `optimizer`, `lr_scheduler`, `loss`,
`metrics`, `training`, `early_stopping` and `checkpoint` sections are this config; the search space writes into it
by dotted key. The trainable validates its config again on entry, so it can be run and
tested without Ray or a spec.

A section that chooses a kind by name (`data`, `model`, `optimizer`, `lr_scheduler`, `loss`) dumps
only the keys its kind reads, as the kind's registry says, and the keys that were set: a
trial's config, the stored spec and `hpo best` then hold what applies.

This module imports neither torch nor Ray: `hpo validate` reads it, and must stay fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from hpo._options import Options
from hpo._registry import Registry
from hpo.trainable import data as _data
from hpo.trainable import losses as _losses
from hpo.trainable import models as _models
from hpo.trainable import optim as _optim
from hpo.trainable import schedules as _schedules
from hpo.trainable.data import DATASETS, Task, dataset_task
from hpo.trainable.imported import is_import_path
from hpo.trainable.losses import LOSSES
from hpo.trainable.metrics import check_metrics, metric_names, reported_name
from hpo.trainable.models import MODELS
from hpo.trainable.optim import OPTIMIZERS
from hpo.trainable.schedules import LR_SCHEDULERS
from hpo.trainable.user_code import check_reference, is_reference
from hpo.types import Mode

# Set on the last result of a trial that ended by itself (all its epochs, or an early stop).
# Ray marks results `done` also when its scheduler stops a trial, so "completed" and
# "pruned" cannot be told apart otherwise.
FINAL_KEY = "trial_finished"


# A section's registry and the keys every kind of it reads.
_KINDS: dict[str, tuple[Registry[Any], frozenset[str]]] = {
    "data": (DATASETS, _data.COMMON_OPTIONS),
    "model": (MODELS, _models.COMMON_OPTIONS),
    "optimizer": (OPTIMIZERS, _optim.COMMON_OPTIONS),
    "lr_scheduler": (LR_SCHEDULERS, _schedules.COMMON_OPTIONS),
    "loss": (LOSSES, _losses.COMMON_OPTIONS),
}
# Keys every kind of a section reads that are dumped only when set: at their default they
# change nothing, and configs of earlier releases did not hold them.
_QUIET: dict[str, frozenset[str]] = {"optimizer": frozenset({"no_decay"})}
# The sections that take a user's own `module:function`, and what it reads (None: the whole
# section, as a user's model receives the whole model config; a user's loss reads none of
# its section: it is called with the outputs and targets only).
_REFERENCES: dict[str, frozenset[str] | None] = {
    "data": _data.USER_OPTIONS,
    "model": None,
    "loss": frozenset(),
}
_REFERENCE = ", or 'package.module:function' for your own"
# The sections that take a class by import path, its other keys being its keyword arguments.
_IMPORTED = {"optimizer", "lr_scheduler"}
_BY_PATH = (
    ", or a class by import path ('torch.optim.lr_scheduler.ExponentialLR', 'package.module:Class')"
)

# `model_dump(context=EVERY_KEY)` dumps every key, applicable or not: what a trial's seed and
# its checkpoint's identity are computed from, so that they do not depend on which keys were
# written out (and are those of the releases that dumped every key).
EVERY_KEY = {"every_key": True}


def applicable(section: str, name: str) -> frozenset[str] | None:
    """The keys of `section` that its kind `name` reads (None: not known, so every key)."""
    registry, common = _KINDS[section]
    if section in _IMPORTED and is_import_path(name):
        return None  # a class's keywords are its own; the section's dump says which were set
    if section in _REFERENCES and is_reference(name):
        read = _REFERENCES[section]
    elif name in registry:
        read = registry.options(name)
    else:
        return None
    return None if read is None else common | read


def lean(config: Mapping[str, Any], searched: Iterable[str] = ()) -> dict[str, Any]:
    """`config` (a trial's, as a dict) with each kind's section holding only the keys its
    chosen kind reads, and the `searched` dotted keys.

    A spec's base config leans its sections for the spec's own kinds; where the space
    searches a kind (`model.name`), a trial drawing another one would otherwise hold options
    of the kind it did not choose.
    """
    kept: dict[str, set[str]] = {}
    for key in searched:
        section, _, rest = key.partition(".")
        kept.setdefault(section, set()).add(rest.partition(".")[0])
    leaned = dict(config)
    for section in _KINDS:
        options = config.get(section)
        if not isinstance(options, Mapping) or not isinstance(options.get("name"), str):
            continue
        read = applicable(section, options["name"])
        if read is not None:
            # A key the section does not declare is a user's function's own (the section
            # rejects it otherwise): its function reads it.
            declared = TrainableSections.model_fields[section].annotation.model_fields
            keep = read | kept.get(section, set())
            leaned[section] = {
                key: value for key, value in options.items() if key in keep or key not in declared
            }
    return leaned


def _registered(section: str, name: str) -> str:
    """Accept a registered name (or, where allowed, a `module:function` reference)."""
    registry, _ = _KINDS[section]
    if section in _REFERENCES and is_reference(name):
        return check_reference(name)
    if section in _IMPORTED and is_import_path(name):
        if not _IMPORT_PATH.match(name):
            raise ValueError(
                f"{name!r} is not an import path such as 'torch.optim.SGD' or "
                "'package.module:Class'"
            )
        return name
    if name not in registry:
        alternative = _REFERENCE if section in _REFERENCES else ""
        raise ValueError(registry.unknown(name, _BY_PATH if section in _IMPORTED else alternative))
    return name


def _names(section: str) -> Callable[[dict[str, Any]], None]:
    """The `name` field's JSON Schema description, read from the registry when the schema is
    made (so that plugins, loaded only then, are listed too)."""
    registry, _ = _KINDS[section]
    others = ["'package.module:function'"] if section in _REFERENCES else []
    others += ["a class by import path ('package.module:Class')"] if section in _IMPORTED else []

    def describe(schema: dict[str, Any]) -> None:
        schema["description"] = registry.describe(*others)

    return describe


def _who_reads(schema: dict[str, Any], model: type[_Kind]) -> None:
    """Say in each option's JSON Schema description which kinds read it, from the registry
    (when the schema is made, so that plugins are named too)."""
    registry, common = _KINDS[model.section]
    for key, prop in schema.get("properties", {}).items():
        if key in common:
            continue
        kinds = [name for name in registry if _reads(registry.options(name), key)]
        if model.section in _REFERENCES and _reads(_REFERENCES[model.section], key):
            kinds.append("your own 'package.module:function'")
        if key in model.path_keys:
            kinds.append("a class by import path")
        said = prop.get("description")
        prop["description"] = (
            f"{said}; for {', '.join(kinds)}" if said else f"for {', '.join(kinds)}"
        )


def _reads(options: frozenset[str] | None, key: str) -> bool:
    """Whether a kind reading `options` (None: every key) reads `key`."""
    return options is None or key in options


class _Kind(Options):
    """A section whose `name` chooses a kind: it dumps the keys its kind reads, and those set."""

    model_config = ConfigDict(json_schema_extra=_who_reads)  # merged with Options' own

    # The key of the section in the config, which names its registry.
    section: ClassVar[str]
    # Where `name` may be a class by import path: the keys the section reads itself then
    # (the others are the class's keyword arguments), and those of them dumped when unset.
    path_keys: ClassVar[frozenset[str]] = frozenset()
    path_dumped: ClassVar[frozenset[str]] = frozenset()
    # A class's keyword arguments, kept as written: a field of the same name (`gamma`) would
    # otherwise validate and convert it (an int `warmup_epochs: 5` becoming 5.0).
    _kwargs: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _by_path(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        name = data.get("name") if isinstance(data, Mapping) else None
        if not cls.path_keys or not isinstance(name, str) or not is_import_path(name):
            return handler(data)
        section = handler({k: v for k, v in data.items() if k in cls.path_keys})
        section._kwargs = {k: v for k, v in data.items() if k not in cls.path_keys}
        return section

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the class `name` imports (empty for a registered name)."""
        return dict(self._kwargs)

    @model_serializer(mode="wrap")
    def _applicable(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        dumped = handler(self)
        every = (info.context or {}).get("every_key")
        if self.path_keys and is_import_path(self.name):  # type: ignore[attr-defined]
            keep = self.path_keys if every else self.path_dumped | self.model_fields_set
            return {k: v for k, v in dumped.items() if k in keep} | self.kwargs()
        read = applicable(self.section, self.name)  # type: ignore[attr-defined]
        if read is None or every:
            return dumped
        keep = (read - _QUIET.get(self.section, frozenset())) | self.model_fields_set
        return {key: value for key, value in dumped.items() if key in keep}


class KeysError(ValueError):
    """Keys of a section that it does not take, each with its own message.

    Raised by a section's validator, which pydantic can only place at the section: the spec
    reports each key at its own line instead (`messages`); elsewhere the one message says it all.
    """

    def __init__(self, messages: Mapping[str, str], message: str):
        self.messages = dict(messages)
        super().__init__(message)


class DataConfig(_Kind):
    """Which data, and how it is split. The kind-specific keys apply to their kind only.

    A user's own data function (`name: package.module:function`) may have keys of its own
    besides these (`image_size`, `vocab_size`, ...): it receives the whole section, and its
    keys are searchable like any other (`data.image_size`).
    """

    # Extra keys are the user's function's own; `_own_keys` rejects them for hpo's datasets.
    model_config = ConfigDict(extra="allow")

    section: ClassVar[str] = "data"
    name: str = Field("digits", json_schema_extra=_names("data"))
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share held out for validation")
    test_fraction: float = Field(
        0.0, ge=0, lt=1, description="share held out for the final test (0: no test split)"
    )
    standardize: bool = Field(True, description="scale features with training statistics")
    class_names: list[str] | None = Field(
        None,
        description="names of the classes 0..k-1 in the test evaluation's per-class report and "
        "confusion matrix (default: the dataset's `classes`, else the numbers)",
    )
    # files and user functions
    task: Task | None = Field(None, description="classification, regression or detection")
    path: str | None = Field(None, description="a .csv, .parquet or .npz file")
    target: str | None = Field(None, description="the target column of a CSV/Parquet file")
    input_shape: list[int] | None = Field(
        None, description="reshape each row to this shape, e.g. [1, 28, 28] for a cnn"
    )
    num_classes: int | None = Field(
        None, ge=2, description="classes of a dataset that cannot tell (default: its labels)"
    )
    # image_folder
    image_size: int | None = Field(
        None, ge=1, description="resize images to this many pixels square"
    )
    annotations: str | None = Field(
        None,
        description="a JSON file mapping image file names to labels (default: one "
        "subfolder per class)",
    )
    channels: Literal[1, 3] = Field(3, description="1: grayscale, 3: RGB")
    # synthetic data (name: classification | regression)
    n_samples: int = Field(1000, ge=10)
    n_features: int = Field(20, ge=1)
    n_informative: int | None = Field(None, ge=1, description="default: half the features")
    n_classes: int = Field(2, ge=2, description="classes to generate")
    noise: float = Field(0.0, ge=0, description="std of the target noise")
    # Which random dataset: fixed apart from the experiment's seed, which moves the split only.
    data_seed: int = Field(0, description="the generator's seed")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return _registered("data", name)

    @model_validator(mode="after")
    def _own_keys(self) -> DataConfig:
        extra = sorted(self.model_extra or {})
        if extra and not is_reference(self.name):
            from hpo._registry import closest

            own = "only your own data function ('package.module:function') takes keys of its own"
            raise KeysError(
                {
                    key: f"unknown key for dataset {self.name!r}"
                    + closest(key, DataConfig.model_fields)
                    + f"; {own}"
                    for key in extra
                },
                f"unknown key(s) {', '.join(extra)} for dataset {self.name!r}"
                + closest(extra[0], DataConfig.model_fields)
                + f"; {own}",
            )
        return self

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction must be below 1 to leave training data, "
                f"but got {self.val_fraction} + {self.test_fraction}"
            )
        used = (applicable("data", self.name) or frozenset()) - _data.COMMON_OPTIONS
        # Judged by value, not by which keys were given: a config dumped before hpo dumped
        # only what applies repeats every key.
        changed = {
            n for n in _DATA_KIND_OPTIONS if getattr(self, n) != DataConfig.model_fields[n].default
        }
        stray = sorted(changed - used)
        if stray:
            verb = "does" if len(stray) == 1 else "do"
            reads = f"; it reads: {', '.join(sorted(used))}" if used else ""
            raise KeysError(
                {key: f"does not apply to dataset {self.name!r}{reads}" for key in stray},
                f"{', '.join(stray)} {verb} not apply to dataset {self.name!r}{reads}",
            )
        known = DATASETS[self.name].task if self.name in DATASETS else None
        # A user's function defaults to classification (its metric says otherwise).
        needed = {"task"} if known is None and not is_reference(self.name) else set()
        needed |= {"path"} if self.name in ("file", "image_folder") else set()
        missing = sorted(n for n in needed if getattr(self, n) is None)
        if missing:
            raise ValueError(f"dataset {self.name!r} needs {', '.join(missing)}")
        if self.class_names is not None and (known or self.task) is Task.REGRESSION:
            raise KeysError(
                {"class_names": f"dataset {self.name!r} is regression, which has no classes"},
                f"class_names names classes, but dataset {self.name!r} is regression; leave it out",
            )
        return self


# Keys that only some kinds of dataset read (the registry says which).
_DATA_KIND_OPTIONS = frozenset(DataConfig.model_fields) - _data.COMMON_OPTIONS


class AugmentConfig(Options):
    """Training-time augmentation, drawn afresh for every batch (validation is never augmented)."""

    noise_std: float = Field(0.0, ge=0, description="Gaussian noise added to standardised inputs")
    max_shift: int = Field(
        0, ge=0, description="random shifts of image-shaped inputs, up to this many pixels"
    )


class ModelConfig(_Kind):
    """The network. `mlp` and `cnn` are built in; `params` is free for a user's own model."""

    section: ClassVar[str] = "model"
    name: str = Field("mlp", json_schema_extra=_names("model"))
    hidden_size: int = Field(64, ge=1, description="units in each hidden layer")
    num_layers: int = Field(2, ge=0, description="hidden layers (0 gives a linear model)")
    hidden_sizes: list[int] | None = Field(
        None, description="explicit widths, one per hidden layer (overrides the two above)"
    )
    activation: Literal["relu", "gelu", "tanh", "silu"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    batch_norm: bool = False
    # cnn
    channels: int = Field(32, ge=1, description="channels of the first block")
    num_blocks: int = Field(2, ge=1, description="conv blocks, each doubling the channels")
    kernel_size: int = Field(3, ge=1, description="odd kernel size")
    params: dict[str, Any] = Field(
        default_factory=dict, description="a user model's own parameters"
    )

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return _registered("model", name)

    @field_validator("hidden_sizes")
    @classmethod
    def _positive(cls, sizes: list[int] | None) -> list[int] | None:
        if sizes is not None and any(size < 1 for size in sizes):
            raise ValueError(f"every hidden size must be at least 1, but got {sizes}")
        return sizes

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, size: int) -> int:
        if size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep the image size, but got {size}")
        return size


class OptimizerConfig(_Kind):
    """The optimizer: a registered name, or any `torch.optim.Optimizer` class by import path
    (`torch.optim.NAdam`, `package.module:MyOptimizer`) whose other keys are its keyword
    arguments, searchable like any key (`optimizer.betas`)."""

    section: ClassVar[str] = "optimizer"
    path_keys: ClassVar[frozenset[str]] = frozenset({"name", "lr", "weight_decay", "no_decay"})
    path_dumped: ClassVar[frozenset[str]] = frozenset({"name", "lr", "weight_decay"})
    name: str = Field("adam", json_schema_extra=_names("optimizer"))
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    no_decay: list[Literal["bias", "norm"]] = Field(
        default_factory=list,
        description="parameters left out of weight decay: bias (every bias), norm (the "
        "weights of normalisation layers)",
    )
    momentum: float = Field(0.0, ge=0, lt=1)
    nesterov: bool = Field(False, description="with momentum > 0")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return _registered("optimizer", name)

    @model_validator(mode="after")
    def _nesterov(self) -> OptimizerConfig:
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError(
                f"nesterov needs name: sgd and momentum > 0, "
                f"but got name={self.name!r}, momentum={self.momentum}"
            )
        return self


class LRSchedulerConfig(_Kind):
    """How the learning rate changes over training (Ray's trial scheduler is `scheduler`)."""

    section: ClassVar[str] = "lr_scheduler"
    path_keys: ClassVar[frozenset[str]] = frozenset({"name", "interval"})
    path_dumped: ClassVar[frozenset[str]] = frozenset({"name", "interval"})
    name: str = Field("none", json_schema_extra=_names("lr_scheduler"))
    interval: Literal["epoch", "step"] = Field(
        "epoch", description="when to step it: after every epoch or every optimizer step"
    )
    step_size: int = Field(10, ge=1, description="epochs between decays")
    gamma: float = Field(0.1, gt=0, le=1, description="decay factor (per epoch: exponential)")
    factor: float = Field(0.1, gt=0, lt=1, description="decay factor")
    patience: int = Field(5, ge=0, description="epochs without improvement")
    min_lr: float = Field(0.0, ge=0, description="floor of the learning rate")
    warmup_epochs: float = Field(1.0, ge=0, description="linear warmup length")
    pct_start: float = Field(0.3, gt=0, lt=1, description="share spent warming up")
    T_0: int = Field(10, ge=1, description="epochs until the first restart")
    T_mult: int = Field(1, ge=1, description="each cycle is this many times the last")
    eta_min: float = Field(0.0, ge=0, description="the lowest learning rate of each cycle")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return _registered("lr_scheduler", name)


class LossConfig(_Kind):
    """What training minimises: `loss: {name: cross_entropy, label_smoothing: 0.1}`."""

    section: ClassVar[str] = "loss"
    name: str = Field(
        "auto",
        json_schema_extra=_names("loss"),
        description="auto: cross_entropy for classification, mse for regression; "
        "'package.module:function' is called as fn(outputs, targets) -> the batch's mean",
    )
    label_smoothing: float = Field(
        0.0, ge=0, le=1, description="share of each target spread over every class"
    )
    class_weights: list[float] | None = Field(
        None, description="one weight per class, for unbalanced classes"
    )
    pos_weight: float | list[float] | None = Field(
        None, description="weight of the positive class (one, or one per label)"
    )
    delta: float = Field(1.0, gt=0, description="where the loss turns from squared to absolute")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return _registered("loss", name)

    @field_validator("class_weights")
    @classmethod
    def _weights(cls, weights: list[float] | None) -> list[float] | None:
        if weights is not None and (not weights or any(w < 0 for w in weights)):
            raise ValueError(f"class_weights must be one weight >= 0 per class, but got {weights}")
        return weights

    @field_validator("pos_weight")
    @classmethod
    def _positive(cls, weight: float | list[float] | None) -> float | list[float] | None:
        weights = [weight] if isinstance(weight, float | int) else weight
        if weights is not None and (not weights or any(w <= 0 for w in weights)):
            raise ValueError(
                f"pos_weight must be above 0 (one, or one per label), but got {weight}"
            )
        return weight


class TrainingConfig(Options):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    accumulate_batches: int = Field(
        1, ge=1, description="batches whose gradients add up to one optimizer step"
    )
    grad_clip_norm: float | None = Field(None, gt=0, description="clip the gradient's norm")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="auto: bf16 (else fp16) on CUDA, fp32 on CPU"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA if present")
    deterministic: bool = Field(
        False,
        description="bit-identical reruns: deterministic algorithms and cuDNN, no "
        "cudnn.benchmark (off: cudnn.benchmark is on when training on CUDA)",
    )
    detect_anomaly: bool = Field(
        False,
        description="torch.autograd.detect_anomaly: name the backward op that made a NaN (slow)",
    )
    on_oom: Literal["fail", "split"] = Field(
        "fail",
        description=(
            "out of memory: fail the trial (out_of_memory), or retry the step in micro-batches "
            "with doubled accumulation, up to 3 times (the effective batch is unchanged)"
        ),
    )


class EarlyStoppingConfig(Options):
    """Stop a trial whose monitored metric (the config's `metric`) stopped improving."""

    patience: int | None = Field(
        None, ge=1, description="epochs without improvement before stopping (default: never)"
    )
    min_delta: float = Field(0.0, ge=0, description="smaller changes do not count as improving")


class CheckpointConfig(Options):
    every: int = Field(
        0,
        ge=0,
        description="save a checkpoint every this many epochs and at the last (0: never)",
    )
    keep: int = Field(
        1, ge=1, description="checkpoints each trial keeps, the best by the spec's metric"
    )
    keep_trials: int = Field(
        3, ge=1, description="trials of the experiment whose checkpoints are kept, the best ones"
    )


class LoaderConfig(Options):
    """How batches are loaded from a `torch.utils.data.Dataset` (your own, or image_folder).

    hpo's in-memory datasets (scikit-learn's, synthetic, files) batch on the device instead
    and read none of these.
    """

    # Strict: `num_workers: 2.5` or `"2"` is an error at its key, not a silent cast.
    num_workers: int = Field(0, ge=0, strict=True, description="loader processes per trial")
    pin_memory: bool | None = Field(None, description="default: on when training on CUDA")
    persistent_workers: bool = Field(
        False, description="keep the loader processes between epochs (needs num_workers > 0)"
    )
    prefetch_factor: int | None = Field(
        None, ge=1, description="batches each loader process loads ahead (needs num_workers > 0)"
    )
    drop_last: bool = Field(False, description="drop the last, incomplete training batch")
    collate: str | None = Field(
        None, description="'package.module:function' that makes a batch of samples"
    )
    target_key: str = Field("labels", description="the target's key in dict batches")

    @field_validator("collate")
    @classmethod
    def _reference(cls, collate: str | None) -> str | None:
        return None if collate is None else check_reference(collate)

    @model_validator(mode="after")
    def _workers(self) -> LoaderConfig:
        if self.num_workers == 0:
            needing = [k for k in ("persistent_workers", "prefetch_factor") if getattr(self, k)]
            if needing:
                raise ValueError(
                    f"{' and '.join(needing)} need loader processes; set num_workers above 0"
                )
        return self


class TransformConfig(Options):
    """One transform: `{name: albumentations.HorizontalFlip, p: 0.5}`; the other keys are its
    keyword arguments."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(
        description="a class or function by import path: 'package.module.Class' or "
        "'package.module:Class'"
    )

    @field_validator("name")
    @classmethod
    def _dotted(cls, name: str) -> str:
        if not _IMPORT_PATH.match(name):
            raise ValueError(
                f"{name!r} is not an import path such as 'albumentations.HorizontalFlip' or "
                "'my_package.transforms:Jitter'"
            )
        return name

    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


# `a.b.C` or `a.b:C` (the attribute may be dotted after a colon).
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_][\w.]*)?$")


class TransformsConfig(Options):
    """Transforms of each sample, composed in order: `train` for training, `eval` for
    validation and test. They run in the DataLoader's processes."""

    train: list[TransformConfig] = Field(default_factory=list)
    eval: list[TransformConfig] = Field(default_factory=list)


class TrainableSections(Options):
    """The sections a spec shares with the trainable's config (the spec adds its own keys).

    A section added here is a spec section too, validated and searchable by dotted key.
    """

    data: DataConfig = DataConfig()
    loader: LoaderConfig = LoaderConfig()
    transforms: TransformsConfig = TransformsConfig()
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    lr_scheduler: LRSchedulerConfig = LRSchedulerConfig()
    # After `data`: their checks read its task.
    loss: LossConfig = LossConfig()
    metrics: list[str] | None = Field(
        None,
        description="validation metrics, each reported as val_<name> (default: accuracy, f1, "
        "precision, recall for classification; mse, mae, r2 for regression); a "
        "'package.module:function' is called as fn(outputs, targets) on the whole split",
    )
    training: TrainingConfig = TrainingConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()

    @field_validator("loss")
    @classmethod
    def _loss_fits_the_task(cls, loss: LossConfig, info: ValidationInfo) -> LossConfig:
        data = info.data.get("data")
        if data is None:  # the data section is wrong itself, and reported there
            return loss
        task = dataset_task(data)
        own = loss.name == "auto" and not _losses.has_default(task)  # the Pipeline's criterion
        if task not in _losses.loss_tasks(loss.name) and not own:
            raise ValueError(
                f"loss {loss.name!r} does not apply to {task.value} (dataset {data.name!r}); "
                f"choose one of: {', '.join(_losses.losses_for(task))}{_REFERENCE}"
            )
        if loss.name == "auto" and task is Task.REGRESSION:
            stray = [k for k in ("label_smoothing", "class_weights") if getattr(loss, k)]
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} apply to classification, but dataset {data.name!r} is "
                    "regression (loss auto is mse); remove them"
                )
        return loss

    @field_validator("training")
    @classmethod
    def _determinism_can_hold(
        cls, training: TrainingConfig, info: ValidationInfo
    ) -> TrainingConfig:
        loader = info.data.get("loader")
        if training.deterministic and loader is not None and loader.persistent_workers:
            # Persistent workers keep the seeds of the epoch they started in, so a trial
            # resumed at epoch k would draw other random transforms than one never stopped.
            raise ValueError(
                "training.deterministic cannot repeat a resumed trial's random transforms "
                "with loader.persistent_workers: true (the workers keep the seeds of the epoch "
                "they started in); set loader.persistent_workers: false"
            )
        return training

    @field_validator("metrics")
    @classmethod
    def _metrics_fit_the_task(
        cls, metrics: list[str] | None, info: ValidationInfo
    ) -> list[str] | None:
        data, loss = info.data.get("data"), info.data.get("loss")
        if metrics is None or data is None:
            return metrics
        # A loss that is wrong itself is reported at its key; the names are checked still.
        return check_metrics(metrics, dataset_task(data), None if loss is None else loss.name)


class TrainableConfig(TrainableSections):
    """Everything one trial needs to train."""

    # The experiment's seed: fixes the data split for every trial, so trials are comparable,
    # and (with the rest of the config) each trial's own seed.
    seed: int = 0
    # The spec's metric and mode: what early stopping and the plateau LR scheduler watch.
    metric: str = "val_loss"
    mode: Mode = Mode.MIN
    # The spec's objectives when it has several: each must be finite, as the metric must.
    objectives: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _metric_is_reported(self) -> TrainableConfig:
        message = unreported(self.metric, self)
        if message:
            raise ValueError(message)
        return self


# What every epoch reports, whatever the task and metrics.
_EPOCH_METRICS = (
    "epoch",
    "train_loss",
    "val_loss",
    "lr",
    "grad_norm",
    "epoch_time_s",
    "peak_memory_mb",
    "micro_batches",
    # What a model costs (`Pipeline.model_cost`), for trade-offs in several objectives.
    "n_params",
    "model_size_mb",
    "inference_ms",
)


def reported_metrics(config: TrainableSections | DataConfig) -> list[str]:
    """The metrics the trainable reports every epoch (the spec's `metric` is one of them).

    Known before any data is loaded, so that a spec naming another metric is rejected early:
    the epoch's own (`epoch`, `train_loss`, `val_loss`, `lr`, `grad_norm`, `epoch_time_s`,
    `peak_memory_mb`, `micro_batches`) and `val_<name>` of each of the config's `metrics` (a user's `module:fn` as `val_fn`),
    or of the task's defaults.

    Args:
        config: a trial's config or a spec (its sections); a data section alone stands for
            the default metrics of its task.
    """
    data, metrics = (
        (config, None) if isinstance(config, DataConfig) else (config.data, config.metrics)
    )
    names = metric_names(metrics, dataset_task(data))
    return [*_EPOCH_METRICS, *(f"val_{reported_name(name)}" for name in names)]


def unreported(metric: str, config: TrainableSections) -> str | None:
    """Why the trainable would never report `metric` with this config (None: it does)."""
    reported = reported_metrics(config)
    if metric in reported:
        return None
    chosen = "" if config.metrics is None else f" and metrics {config.metrics}"
    return (
        f"the trainable does not report {metric!r} for dataset {config.data.name!r}{chosen}; "
        f"choose one of: {', '.join(reported)}"
    )
