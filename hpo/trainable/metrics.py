"""Validation metrics by name (`metrics: [accuracy, f1_macro, auroc]`) or a user's own.

The names and the outputs each applies to are torch-free (`METRICS`, `check_metrics`,
`metric_names`): the config and `hpo validate` read them. `MetricSet` computes them in a
trial, on the training device: each batch adds to a few counts there, and only `compute`
copies the results (one small tensor) to the CPU.

Counts, not torchmetrics, back the metrics of predicted labels and the regression errors:
`import torchmetrics` costs a fresh trial process 1.2 to 1.5 s on top of torch (it imports
scipy.signal and matplotlib), and every fresh trial worker would pay them. torchmetrics computes
`auroc`, once per epoch on the gathered scores, and is imported only when a spec names it.
`tests/trainable/test_metrics.py` checks every metric against scikit-learn.

Detection metrics (`map`, `map_50`, `map_75`, `map_50_voc11`, `mean_iou`, for `data.task:
detection`) take a list of box dicts per batch instead; `detection.py` keeps and scores them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from hpo._registry import Registry, closest
from hpo.trainable.data import Task
from hpo.trainable.losses import resolve
from hpo.trainable.user_code import check_reference, is_reference, load_callable

if TYPE_CHECKING:
    from hpo.trainable import _metric_states, detection


class Output(str, Enum):
    """What a classifier's outputs are, which decides the metrics that apply."""

    MULTICLASS = "multi-class classification"
    BINARY = "binary classification"
    MULTILABEL = "multi-label classification"
    REGRESSION = "regression"
    DETECTION = "detection (boxes, scores and labels per image)"


_CLASSIFIERS = frozenset({Output.MULTICLASS, Output.BINARY, Output.MULTILABEL})


@dataclass(frozen=True)
class MetricKind:
    """A registered metric: the outputs it applies to."""

    outputs: frozenset[Output]


# name -> MetricKind; the spec's `metrics` are checked against these names (and `topK_accuracy`
# for any K). A user's own metric is a `package.module:function`.
METRICS: Registry[MetricKind] = Registry("metric")

# What the trainable reported before `metrics` could be chosen; stores and specs use these names.
DEFAULT_METRICS = {
    Task.CLASSIFICATION: ("accuracy", "f1", "precision", "recall"),
    Task.REGRESSION: ("mse", "mae", "r2"),
    Task.DETECTION: ("map", "map_50", "map_75", "mean_iou"),
}

_TOP_K = re.compile(r"^top(\d+)_accuracy$")
_REFERENCE_HINT = ", topK_accuracy for any K, or 'package.module:function' for your own"


def _register(name: str, outputs: Iterable[Output], description: str) -> None:
    METRICS.register(name, MetricKind(frozenset(outputs)), description=description)


_register("accuracy", _CLASSIFIERS, "share of samples predicted right (multi-label: of labels)")
_register(
    "top5_accuracy",
    {Output.MULTICLASS},
    "share of samples whose class is among the 5 highest outputs (topK_accuracy: any K)",
)
_register("exact_match", {Output.MULTILABEL}, "share of samples with every label right")
for _metric in ("f1", "precision", "recall"):
    _register(_metric, _CLASSIFIERS, f"{_metric}, the mean over classes (as {_metric}_macro)")
    _register(f"{_metric}_macro", _CLASSIFIERS, f"{_metric}, the mean over classes")
    _register(f"{_metric}_micro", _CLASSIFIERS, f"{_metric} of all decisions pooled")
    _register(
        f"{_metric}_weighted", _CLASSIFIERS, f"{_metric}, the mean over classes by their support"
    )
    _register(
        f"{_metric}_binary",
        {Output.BINARY, Output.MULTICLASS},
        f"{_metric} of the positive class (1) of two",
    )
_register("auroc", _CLASSIFIERS, "area under the ROC curve (one-vs-rest, macro; torchmetrics)")
_register("mse", {Output.REGRESSION}, "mean squared error")
_register("mae", {Output.REGRESSION}, "mean absolute error")
_register("rmse", {Output.REGRESSION}, "root mean squared error (of several targets, the mean)")
_register("r2", {Output.REGRESSION}, "R² score (of several targets, the mean)")
_DETECTION = {Output.DETECTION}
_register("map", _DETECTION, "COCO mAP over IoU 0.50:0.95 (faster-coco-eval; hpo[detection])")
_register("map_50", _DETECTION, "COCO mAP at IoU 0.50 (faster-coco-eval; hpo[detection])")
_register("map_75", _DETECTION, "COCO mAP at IoU 0.75 (faster-coco-eval; hpo[detection])")
_register("map_50_voc11", _DETECTION, "PASCAL VOC 2007 mAP at IoU 0.5, 11-point AP")
_register(
    "mean_iou", _DETECTION, "each ground-truth box's best IoU with a prediction of its class"
)


def metric_kind(name: str) -> MetricKind | None:
    """The registered metric `name` (any `topK_accuracy` too), or None."""
    if _TOP_K.match(name):
        return METRICS.entry("top5_accuracy").value
    return METRICS.entry(name).value if name in METRICS else None


def possible_outputs(task: Task, loss: str | None = "auto") -> frozenset[Output]:
    """The outputs a model trained on `task` with `loss` may have (None: a loss not known)."""
    if task is Task.REGRESSION:
        return frozenset({Output.REGRESSION})
    if task is Task.DETECTION:
        return frozenset({Output.DETECTION})
    if loss is None or is_reference(loss):
        return _CLASSIFIERS
    if resolve(loss, task) == "bce_with_logits":
        return frozenset({Output.BINARY, Output.MULTILABEL})
    return frozenset({Output.MULTICLASS})


def reported_name(metric: str) -> str:
    """The name a metric is reported under, without its prefix: a user's `module:fn` is `fn`."""
    return metric.rpartition(":")[2].rpartition(".")[2] if is_reference(metric) else metric


def metric_names(names: Sequence[str] | None, task: Task) -> list[str]:
    """The metrics computed: `names`, or the task's defaults when None."""
    return list(DEFAULT_METRICS[task] if names is None else names)


def check_metrics(names: Sequence[str], task: Task, loss: str | None = "auto") -> list[str]:
    """`names` if each is a metric that applies to `task` trained with `loss` (None: a loss
    not known, such as one that is invalid itself: any classifier's metric passes).

    Raises:
        ValueError: for the first unknown or inapplicable name, or a name reported twice,
            saying which metrics there are.
    """
    outputs = possible_outputs(task, loss)
    seen: dict[str, str] = {}
    for name in names:
        if is_reference(name):
            check_reference(name)
        else:
            kind = metric_kind(name)
            if kind is None:
                raise ValueError(METRICS.unknown(name, _REFERENCE_HINT))
            if not kind.outputs & outputs:
                raise ValueError(_inapplicable(name, kind, task, loss, outputs))
        reported = reported_name(name)
        if reported in seen:
            twice = "is listed twice" if seen[reported] == name else f"and {seen[reported]!r}"
            raise ValueError(
                f"metric {name!r} {twice}: both would be reported as 'val_{reported}'; "
                "list each metric once"
            )
        seen[reported] = name
    return list(names)


def _inapplicable(
    name: str, kind: MetricKind, task: Task, loss: str | None, outputs: frozenset[Output]
) -> str:
    what = " or ".join(sorted(o.value for o in outputs))
    why = f" (loss {resolve(loss, task)})" if task is Task.CLASSIFICATION and loss else ""
    usable = [m for m in METRICS if METRICS[m].outputs & outputs]
    hint = closest(name, usable) or ";"
    return (
        f"metric {name!r} does not apply to {what}{why}: it is for "
        f"{' or '.join(sorted(o.value for o in kind.outputs))}{hint} "
        f"metrics for {what}: {', '.join(usable)}"
    )


class MetricSet:
    """The named metrics of a model's outputs, accumulated batch by batch on its device.

    Args:
        names: metric names or `package.module:function` references (None: the task's
            defaults). A user's function is called once per `compute` with every output and
            target of the epoch (tensors on the device) and returns a number.
        task: classification or regression.
        device: where the counts are kept (the training device).
        num_classes: the classes of a multi-class model (None: its outputs' second dimension).
        loss_name: the loss the model is trained with: `bce_with_logits` makes a classifier's
            outputs binary (one output) or multi-label (k outputs, (n, k) 0/1 targets).

    Raises:
        ValueError: a name that is unknown or does not apply to the task and loss.
    """

    def __init__(
        self,
        names: Sequence[str] | None,
        task: Task,
        device: Any,
        *,
        num_classes: int | None = None,
        loss_name: str = "auto",
    ) -> None:
        self.names = check_metrics(metric_names(names, task), task, loss_name)
        self.task = task
        self.device = device
        self.num_classes = num_classes
        self.loss_name = loss_name
        self.output: Output | None = None  # known at the first update
        self._states: _metric_states.States | detection.DetectionStates | None = None
        self._added = False  # a batch since the last compute
        self._user: dict[str, Callable[..., Any]] = {
            name: load_callable(name) for name in self.names if is_reference(name)
        }

    def update(self, outputs: Any, targets: Any) -> None:
        """Add a batch: the model's outputs (logits for classifiers) and the targets.

        For detection, a list of predictions `{boxes, scores, labels}` and one of targets
        `{boxes, labels}`, a dict per image (see `hpo.trainable.detection`).

        Raises:
            ValueError: the outputs do not fit the metrics (a top-5 accuracy of 3 classes, a
                binary-only metric of many classes; a malformed box, naming the image).
        """
        from hpo.trainable import _metric_states

        if self.task is Task.DETECTION:
            from hpo.trainable.detection import DetectionStates

            if self._states is None:
                self.output = Output.DETECTION
                self._states = DetectionStates(self.names)
            self._states.update(outputs, targets)
            self._added = True
            return
        if self._states is None:
            self.output = _metric_states.output_of(self.task, self.loss_name, outputs)
            self._states = _metric_states.States(
                self.names, self.output, outputs, self.device, num_classes=self.num_classes
            )
        self._states.update(outputs.detach(), targets.detach())
        self._added = True

    def compute(self, prefix: str, *, sync: bool = False) -> dict[str, float]:
        """Each metric as `{prefix}_{name}`, over every batch since the last compute; then
        the counts start again.

        Args:
            prefix: `val`, `test`, ...
            sync: add up the counts of every process of the torch.distributed group first
                (each rank then has the group's metrics; every rank must call it).

        Raises:
            RuntimeError: no batch was added.
        """
        if self._states is None or not (self._added or sync):
            raise RuntimeError("MetricSet.compute was called without a batch since the last one")
        try:
            if self.task is Task.DETECTION:
                values = self._states.compute(self._user, sync=sync, split=prefix)
            else:
                values = self._states.compute(self._user, sync=sync)
        finally:
            self._states.reset()
            self._added = False
        return {f"{prefix}_{reported_name(name)}": values[name] for name in self.names}
