"""Detection metrics in a trial: `metrics: [map, map_50, map_75, map_50_voc11, mean_iou]`.

A detector's validation gives, for every image, predictions `{boxes, scores, labels}` and the
targets `{boxes, labels}`: boxes `(n, 4)` as `(x1, y1, x2, y2)` in pixels, labels integer
classes. `DetectionStates` keeps an epoch's on the training device (no copy, no sync per
batch) and, at `compute`, copies them to the CPU at once, checks their values, and scores them
(`_detection_scores`: COCO's evaluation by faster-coco-eval, VOC's 11-point AP, mean IoU).

A malformed prediction or target fails the trial with the image's index in the split and the
field: its structure (keys, shapes, dtypes) when the batch is added, its values (non-finite,
x2 < x1) when the epoch is scored.

`collate` batches `(image, target)` items of a detection Dataset: images stacked, targets a
list (each image has its own number of boxes); hpo's loaders use it for detection data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from hpo.trainable import _detection_scores as scores

__all__ = ["COCO_METRICS", "DETECTION_METRICS", "DetectionStates", "collate"]

# The metrics COCO's evaluation gives, and all of them.
COCO_METRICS = ("map", "map_50", "map_75")
DETECTION_METRICS = (*COCO_METRICS, "map_50_voc11", "mean_iou")

_FIELDS = {"predictions": ("boxes", "scores", "labels"), "targets": ("boxes", "labels")}
_FORMAT = "boxes are (x1, y1, x2, y2) in pixels, one row per box"


def collate(batch: Sequence[tuple[Any, Mapping[str, Any]]]) -> tuple[torch.Tensor, list[Any]]:
    """`(image, target)` items as `(images, targets)`: the images stacked, the targets a list.

    Raises:
        TypeError: an item that is not an `(image, target)` pair.
    """
    if not all(isinstance(item, tuple | list) and len(item) == 2 for item in batch):
        raise TypeError(
            "a detection Dataset's items must be (image, {'boxes': ..., 'labels': ...}) pairs"
        )
    images = [torch.as_tensor(image) for image, _ in batch]
    return torch.stack(images), [target for _, target in batch]


class DetectionStates:
    """One epoch's predictions and targets, image by image, on their device.

    Args:
        names: the detection metrics and the user's `package.module:function`s, which are
            called once per epoch as `fn(predictions, targets)` with every image's dicts of
            CPU tensors, and return a number.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.reset()

    def reset(self) -> None:
        self.count = 0  # images added
        self._parts: dict[str, list[torch.Tensor]] = {
            f"{kind}.{field}": [] for kind, fields in _FIELDS.items() for field in fields
        }

    def update(
        self, predictions: Sequence[Mapping[str, Any]], targets: Sequence[Mapping[str, Any]]
    ) -> None:
        """Add a batch: one predictions dict and one targets dict per image.

        Raises:
            ValueError: a dict without its keys, a field of the wrong shape or dtype, or
                predictions for another number of images than the targets; the message names
                the image's index in the split and the field.
        """
        for kind, given in (("predictions", predictions), ("targets", targets)):
            if isinstance(given, Mapping) or not isinstance(given, Sequence):
                raise ValueError(
                    f"detection {kind} must be a list with one dict per image, but got a "
                    f"{type(given).__name__}"
                )
        if len(predictions) != len(targets):
            raise ValueError(
                f"a batch from image {self.count} on has predictions for {len(predictions)} "
                f"images but targets for {len(targets)}; give one of each per image"
            )
        for offset, (predicted, target) in enumerate(zip(predictions, targets, strict=True)):
            index = self.count + offset
            for kind, image in (("predictions", predicted), ("targets", target)):
                for field, value in _checked(kind, image, index).items():
                    self._parts[f"{kind}.{field}"].append(value.detach())
        self.count += len(targets)

    def compute(
        self, user: Mapping[str, Callable[..., Any]], *, sync: bool, split: str = "val"
    ) -> dict[str, float]:
        """Every metric of `names` over the images since the last reset.

        Raises:
            ValueError: `sync` (every rank scores the images it was given), a box of
                non-finite or reversed corners, or no ground-truth box in the split.
        """
        if sync and torch.distributed.is_available() and torch.distributed.is_initialized():
            raise ValueError(
                "detection metrics are computed from the images of one process; evaluate the "
                "whole split on every rank (as hpo's validation does) and compute without sync"
            )
        predictions, targets = self._on_cpu()
        _check_values(predictions, targets, split)
        if not sum(len(t.labels) for t in targets):
            raise ValueError(
                f"the {split} split's {len(targets)} images hold no ground-truth box: detection "
                "metrics are undefined without objects to find"
            )
        values: dict[str, float] = {}
        if any(name in COCO_METRICS for name in self.names):
            values |= scores.coco_map(predictions, targets)
        if "map_50_voc11" in self.names:
            values["map_50_voc11"] = scores.voc11_map(predictions, targets)
        if "mean_iou" in self.names:
            values["mean_iou"] = scores.mean_iou(predictions, targets)
        if user:
            as_dicts = _as_dicts(predictions), _as_dicts(targets)
            values |= {name: float(fn(*as_dicts)) for name, fn in user.items()}
        return {name: values[name] for name in self.names}

    def _on_cpu(self) -> tuple[list[scores.Boxes], list[scores.Boxes]]:
        """Each image's boxes as numpy, from one copy per field for the whole epoch."""
        fields: dict[str, list[np.ndarray]] = {}
        for key, parts in self._parts.items():
            dtype = torch.int64 if key.endswith("labels") else torch.float64
            # float64 on the CPU: MPS has no float64, so the cast comes after the copy.
            joined = torch.cat([p.reshape(-1) for p in parts]).cpu().to(dtype).numpy()
            sizes = [p.numel() for p in parts]
            fields[key] = np.split(joined, np.cumsum(sizes)[:-1])
        predictions = [
            scores.Boxes(b.reshape(-1, 4), label, s)
            for b, s, label in zip(
                fields["predictions.boxes"],
                fields["predictions.scores"],
                fields["predictions.labels"],
                strict=True,
            )
        ]
        targets = [
            scores.Boxes(b.reshape(-1, 4), label)
            for b, label in zip(fields["targets.boxes"], fields["targets.labels"], strict=True)
        ]
        return predictions, targets


def _checked(kind: str, image: Any, index: int) -> dict[str, torch.Tensor]:
    """One image's fields, checked for keys, shapes and dtypes (no values: no device sync)."""
    where = f"{kind}[{index}]"
    if not isinstance(image, Mapping):
        raise ValueError(
            f"{where} (image {index} of the split) is a {type(image).__name__}, not a dict of "
            f"{', '.join(_FIELDS[kind])}"
        )
    missing = [field for field in _FIELDS[kind] if field not in image]
    if missing:
        raise ValueError(
            f"{where} (image {index} of the split) has no {', '.join(missing)}: it holds "
            f"{sorted(image)}; {kind} need {', '.join(_FIELDS[kind])}"
        )
    fields: dict[str, torch.Tensor] = {}
    for field in _FIELDS[kind]:
        value = image[field]
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{where}.{field} (image {index} of the split) is a {type(value).__name__}, "
                "not a tensor"
            )
        fields[field] = value
    boxes = fields["boxes"]
    n = len(boxes) if boxes.ndim else -1
    # (0,) for no box is common: an empty list made a tensor.
    if not (boxes.ndim == 2 and boxes.shape[1] == 4) and boxes.shape != (0,):
        raise ValueError(
            f"{where}.boxes (image {index} of the split) has shape {list(boxes.shape)}, not "
            f"(n, 4); {_FORMAT}"
        )
    if not boxes.is_floating_point() and boxes.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"{where}.boxes (image {index} of the split) is of dtype {boxes.dtype}")
    for field in _FIELDS[kind][1:]:
        value = fields[field]
        if value.shape != (n,):
            raise ValueError(
                f"{where}.{field} (image {index} of the split) has shape {list(value.shape)}, "
                f"but its boxes are {n}: give one {field[:-1]} per box, shape ({n},)"
            )
    if fields["labels"].is_floating_point() or fields["labels"].dtype == torch.bool:
        raise ValueError(
            f"{where}.labels (image {index} of the split) is of dtype "
            f"{fields['labels'].dtype}; labels are integer classes (torch.int64)"
        )
    return fields


def _check_values(
    predictions: Sequence[scores.Boxes], targets: Sequence[scores.Boxes], split: str
) -> None:
    """Finite boxes with x1 <= x2 and y1 <= y2, finite scores, labels of 0 or more."""
    for kind, images in (("predictions", predictions), ("targets", targets)):
        for index, image in enumerate(images):
            where = f"{kind}[{index}]"
            problem: str | None = None
            bad_box = ~np.isfinite(image.boxes).all(1) | (
                image.boxes[:, 2:] < image.boxes[:, :2]
            ).any(1)
            if bad_box.any():
                row = int(np.flatnonzero(bad_box)[0])
                box = image.boxes[row].tolist()
                why = "is not finite" if not np.isfinite(box).all() else "has x2 < x1 or y2 < y1"
                problem = f"{where}.boxes[{row}] = {box} {why}; {_FORMAT}"
            elif image.scores is not None and not np.isfinite(image.scores).all():
                row = int(np.flatnonzero(~np.isfinite(image.scores))[0])
                problem = f"{where}.scores[{row}] is {image.scores[row]}, not a finite number"
            elif (image.labels < 0).any():
                row = int(np.flatnonzero(image.labels < 0)[0])
                problem = f"{where}.labels[{row}] is {image.labels[row]}; labels are 0 or more"
            if problem:
                raise ValueError(f"image {index} of the {split} split: {problem}")


def _as_dicts(images: Sequence[scores.Boxes]) -> list[dict[str, torch.Tensor]]:
    out = []
    for image in images:
        fields = {"boxes": torch.from_numpy(image.boxes), "labels": torch.from_numpy(image.labels)}
        if image.scores is not None:
            fields["scores"] = torch.from_numpy(image.scores)
        out.append(fields)
    return out
