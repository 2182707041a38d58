"""The counts behind `MetricSet`, kept on the training device (torch side).

Labels go into a confusion matrix (multi-class, binary) or per-label counts (multi-label);
regression errors into sums and a running mean and variance of the target (Chan's merge,
so that R² of a constant target is exactly that of scikit-learn). Each is a handful of
kernels per batch and no copy to the CPU; `compute` derives every metric from them with
scikit-learn's definitions (`zero_division=0`, the classes of a macro mean those seen in the
targets or the predictions) and copies them to the CPU at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from hpo.trainable.data import Task
from hpo.trainable.losses import resolve
from hpo.trainable.metrics import _TOP_K, Output, metric_kind
from hpo.trainable.user_code import is_reference

_AVERAGES = ("macro", "micro", "weighted", "binary")


def output_of(task: Task, loss: str, outputs: torch.Tensor) -> Output:
    """What the model's outputs are, from the task, the loss and their shape."""
    if task is Task.REGRESSION:
        return Output.REGRESSION
    one = outputs.ndim == 1 or outputs.shape[1] == 1
    if resolve(loss, task) == "bce_with_logits":
        return Output.BINARY if one else Output.MULTILABEL
    return Output.BINARY if one else Output.MULTICLASS


def _divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    return torch.where(denominator > 0, numerator / torch.where(denominator > 0, denominator, 1), 0)


def _split(name: str) -> tuple[str, str]:
    """`f1_micro` -> (`f1`, `micro`); `f1` -> (`f1`, `macro`)."""
    base, _, average = name.rpartition("_")
    return (base, average) if average in _AVERAGES else (name, "macro")


class States:
    """The counts every metric of `names` needs, for outputs like `example`."""

    def __init__(
        self,
        names: Sequence[str],
        output: Output,
        example: torch.Tensor,
        device: Any,
        *,
        num_classes: int | None = None,
    ) -> None:
        self.names = list(names)
        self.output = output
        self.device = torch.device(device)
        # Sums in float64 where the device has it (MPS has not).
        self.dtype = torch.float32 if self.device.type == "mps" else torch.float64
        builtin = [n for n in self.names if not is_reference(n)]
        for name in builtin:
            kind = metric_kind(name)
            if kind is not None and output not in kind.outputs:
                raise ValueError(
                    f"metric {name!r} does not apply to the model's outputs "
                    f"(shape {list(example.shape)}): they are {output.value}"
                )
        width = 1 if example.ndim == 1 else example.shape[1]
        self.width = width
        self.classes = (num_classes or width) if output is Output.MULTICLASS else 2
        self.labels = width if output is Output.MULTILABEL else 0
        self.top_k = sorted({int(m.group(1)) for n in builtin if (m := _TOP_K.match(n))})
        for k in self.top_k:
            if k >= self.classes:
                raise ValueError(
                    f"metric 'top{k}_accuracy' needs more than {k} classes, but the model has "
                    f"{self.classes}; choose a smaller K"
                )
        if output is Output.MULTICLASS and width != self.classes:
            raise ValueError(f"the model has {width} outputs for {self.classes} classes")
        self.binary_counts = any(_split(n)[1] == "binary" for n in builtin)
        if self.binary_counts and self.classes != 2:
            raise ValueError(
                f"the *_binary metrics need two classes, but the model has {self.classes}; "
                "use *_macro, *_micro or *_weighted"
            )
        self.gather = "auroc" in builtin or len(builtin) < len(self.names)
        self.reset()

    # --- accumulating ---------------------------------------------------------------------

    def reset(self) -> None:
        # Normal tensors even when called under torch.inference_mode (as an evaluation loop
        # is): an inference tensor could not be added to outside it, in the next epoch.
        with torch.inference_mode(False):
            self._zero()

    def _zero(self) -> None:
        zeros = lambda *shape, dtype=torch.int64: torch.zeros(  # noqa: E731
            shape, dtype=dtype, device=self.device
        )
        self.count = zeros()
        if self.output is Output.REGRESSION:
            # Per target column: n, sum err², sum |err|, mean y, M2 of y (`_add_regression`).
            self.regression = zeros(5, self.width, dtype=self.dtype)
        elif self.output is Output.MULTILABEL:
            self.per_label = zeros(4, self.labels)  # tp, fp, fn, tn
            self.exact = zeros()
        else:
            self.confusion = zeros(self.classes, self.classes)  # rows: true, columns: predicted
        self.top_hits = zeros(max(len(self.top_k), 1))
        self.outputs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        if self.gather:
            self.outputs.append(outputs)
            self.targets.append(targets)
        self.count += len(outputs)
        if self.output is Output.REGRESSION:
            self._add_regression(outputs, targets)
        elif self.output is Output.MULTILABEL:
            predicted = outputs > 0  # probability above 0.5
            actual = targets > 0.5
            self.per_label += torch.stack(
                [
                    (predicted & actual).sum(0),
                    (predicted & ~actual).sum(0),
                    (~predicted & actual).sum(0),
                    (~predicted & ~actual).sum(0),
                ]
            )
            self.exact += (predicted == actual).all(1).sum()
        else:
            true = self._labels(targets)
            if self.output is Output.BINARY:
                predicted = (outputs.reshape(-1) > 0).long()
            else:
                predicted = outputs.argmax(1)
                for i, k in enumerate(self.top_k):
                    top = outputs.topk(k, dim=1).indices
                    self.top_hits[i] += (top == true[:, None]).any(1).sum()
            # A label out of range makes more cells than the matrix has, and fails here.
            cells = torch.bincount(true * self.classes + predicted, minlength=self.classes**2)
            self.confusion += cells.reshape(self.classes, self.classes)

    def _labels(self, targets: torch.Tensor) -> torch.Tensor:
        """Class indices: of class probabilities (or one-hot rows), their largest; of 0/1
        floats, rounded."""
        if self.output is Output.MULTICLASS and targets.ndim == 2:
            return targets.argmax(1)
        return (
            targets.reshape(-1).round().long()
            if targets.is_floating_point()
            else targets.reshape(-1).long()
        )

    def _add_regression(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Merge a batch's (n, sum err², sum |err|, mean y, M2 of y) per target column."""
        y = targets.to(self.dtype).reshape(len(targets), -1)
        error = outputs.to(self.dtype).reshape(y.shape) - y
        n = torch.full((y.shape[1],), float(len(y)), dtype=self.dtype, device=self.device)
        mean = y.mean(0)
        batch = torch.stack(
            [n, (error**2).sum(0), error.abs().sum(0), mean, ((y - mean) ** 2).sum(0)]
        )
        self.regression = _merge(self.regression, batch)

    # --- computing ------------------------------------------------------------------------

    def compute(self, user: dict[str, Callable[..., Any]], *, sync: bool) -> dict[str, float]:
        if sync and torch.distributed.is_available() and torch.distributed.is_initialized():
            self._sync()
        outputs = torch.cat(self.outputs) if self.gather else None
        targets = torch.cat(self.targets) if self.gather else None
        counted: dict[str, torch.Tensor] = {}
        own: dict[str, float] = {}
        for name in self.names:
            if name in user:
                own[name] = float(user[name](outputs, targets))
            elif name == "auroc":
                counted[name] = self._auroc(outputs, targets)
            else:
                counted[name] = self._counted(name)
        # One copy to the CPU for all of them.
        numbers = torch.stack([v.to(self.dtype).reshape(()) for v in counted.values()]).tolist()
        values = dict(zip(counted, numbers, strict=True)) | own
        return {name: values[name] for name in self.names}

    def _counted(self, name: str) -> torch.Tensor:
        if self.output is Output.REGRESSION:
            return self._regression_metric(name)
        if (match := _TOP_K.match(name)) is not None:
            hits = self.top_hits[self.top_k.index(int(match.group(1)))]
            return hits.to(self.dtype) / self.count
        if self.output is Output.MULTILABEL:
            return self._multilabel_metric(name)
        cm = self.confusion.to(self.dtype)
        if name == "accuracy":
            return cm.trace() / cm.sum()
        tp, actual, predicted = cm.diagonal(), cm.sum(1), cm.sum(0)
        return _averaged(name, tp, actual, predicted, present=(actual + predicted) > 0)

    def _multilabel_metric(self, name: str) -> torch.Tensor:
        tp, fp, fn, tn = self.per_label.to(self.dtype)
        if name == "accuracy":  # of every (sample, label) decision: 1 - Hamming loss
            return (tp + tn).sum() / (tp + fp + fn + tn).sum()
        if name == "exact_match":
            return self.exact.to(self.dtype) / self.count
        return _averaged(name, tp, tp + fn, tp + fp, present=None)

    def _regression_metric(self, name: str) -> torch.Tensor:
        n, squared, absolute, _, m2 = self.regression
        if name == "mse":
            return (squared / n).mean()
        if name == "mae":
            return (absolute / n).mean()
        if name == "rmse":  # scikit-learn's: the mean of each target's RMSE
            return (squared / n).sqrt().mean()
        # R²; of a constant target 1 if predicted exactly, else 0 (scikit-learn's force_finite).
        r2 = torch.where(m2 == 0, (squared == 0).to(self.dtype), 1 - squared / m2.clamp(min=1e-300))
        return r2.mean()

    def _auroc(self, outputs: torch.Tensor | None, targets: torch.Tensor | None) -> torch.Tensor:
        # Imported here only: torchmetrics costs a fresh process over a second (module doc).
        from torchmetrics.functional import classification as tmf

        assert outputs is not None and targets is not None
        outputs = outputs.float()
        if self.output is Output.MULTILABEL:
            return tmf.multilabel_auroc(
                outputs.sigmoid(), targets.long(), self.labels, thresholds=None, validate_args=False
            )
        if self.output is Output.BINARY:
            return tmf.binary_auroc(
                outputs.reshape(-1).sigmoid(),
                self._labels(targets),
                thresholds=None,
                validate_args=False,
            )
        return tmf.multiclass_auroc(
            outputs.softmax(1),
            self._labels(targets),
            self.classes,
            thresholds=None,
            validate_args=False,
        )

    def _sync(self) -> None:
        """Add up every rank's counts (and gather its outputs), so each rank has the group's."""
        import torch.distributed as dist

        for counts in self._sums():
            dist.all_reduce(counts)
        if self.output is Output.REGRESSION:
            parts = [torch.empty_like(self.regression) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, self.regression)
            merged = parts[0]
            for part in parts[1:]:
                merged = _merge(merged, part)
            self.regression = merged
        if self.gather:
            self.outputs = [_gather(torch.cat(self.outputs))]
            self.targets = [_gather(torch.cat(self.targets))]

    def _sums(self) -> list[torch.Tensor]:
        sums = [self.count, self.top_hits]
        if self.output is Output.MULTILABEL:
            sums += [self.per_label, self.exact]
        elif self.output is not Output.REGRESSION:
            sums.append(self.confusion)
        return sums


def _averaged(
    name: str,
    tp: torch.Tensor,
    actual: torch.Tensor,
    predicted: torch.Tensor,
    present: torch.Tensor | None,
) -> torch.Tensor:
    """Precision, recall or F1 from per-class counts, averaged as the name says.

    `present` marks the classes a macro mean runs over (scikit-learn: those in the targets or
    the predictions; None: every label, as for multi-label targets).
    """
    metric, average = _split(name)
    if average == "micro":
        tp, actual, predicted = tp.sum(), actual.sum(), predicted.sum()
    denominator = {"precision": predicted, "recall": actual, "f1": actual + predicted}[metric]
    scores = _divide((2 if metric == "f1" else 1) * tp, denominator)
    if average == "micro":
        return scores
    if average == "binary":
        return scores[1]
    if average == "weighted":
        return _divide((scores * actual).sum(), actual.sum())
    return scores[present].mean() if present is not None else scores.mean()


def _merge(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Two (n, sum err², sum |err|, mean, M2) summaries as one (Chan et al.'s parallel
    variance): exact for a constant target, unlike a sum of squares."""
    n_a, n_b = a[0], b[0]
    n = n_a + n_b
    delta = b[3] - a[3]
    mean = a[3] + delta * _divide(n_b, n)
    m2 = a[4] + b[4] + delta**2 * _divide(n_a * n_b, n)
    return torch.stack([n, a[1] + b[1], a[2] + b[2], mean, m2])


def _gather(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's `tensor` (their first dimensions may differ), concatenated in rank order."""
    import torch.distributed as dist

    world = dist.get_world_size()
    size = torch.tensor([len(tensor)], device=tensor.device)
    sizes = [torch.empty_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: len(tensor)] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(s.item())] for part, s in zip(parts, sizes, strict=True)])
