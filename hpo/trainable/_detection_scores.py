"""The numbers behind the detection metrics, from one epoch's boxes (numpy, no torch).

Every image is a `Boxes` of ground truth and one of predictions, `(x1, y1, x2, y2)` in pixels.

- `coco_map`: COCO's AP over IoU 0.50:0.95, at 0.50 and at 0.75, by faster-coco-eval (a C++
  port of pycocotools that gives its numbers), or pycocotools where only that is installed.
- `voc11_map`: PASCAL VOC 2007's 11-point AP at IoU 0.5, matched as VOC's devkit matches:
  each prediction, by descending score, takes the ground-truth box of its class and image
  that it overlaps most; a hit on a box already taken is a false positive.
- `mean_iou`: each ground-truth box's best IoU with a prediction of its class in its image
  (0 where there is none), averaged over every ground-truth box.

The mean over classes is over those that have ground truth, as COCO's is.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_INSTALL = "install the detection extra: pip install 'hpo[detection]' (faster-coco-eval)"

# VOC 2007's recall points, as its devkit (and the PyTorch guide's `calculate_ap`) draws them:
# `np.arange` lands a hair above 0.3, 0.6 and 0.7, and those are the thresholds compared.
_VOC_RECALLS = np.arange(0.0, 1.1, 0.1)
VOC_IOU = 0.5


@dataclass(frozen=True)
class Boxes:
    """One image's boxes: (n, 4) float64 `boxes`, (n,) int64 `labels` and, for predictions,
    (n,) float64 `scores`."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The (n, m) IoU of every box of `a` (n, 4) with every box of `b` (m, 4), xyxy.

    0 where the union is empty (two boxes of no area), as the guide's `calculate_iou`.
    """
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    intersection = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1), 0.0)


def _classes(targets: Sequence[Boxes]) -> np.ndarray:
    return np.unique(np.concatenate([t.labels for t in targets]))


def mean_iou(predictions: Sequence[Boxes], targets: Sequence[Boxes]) -> float:
    """Each ground-truth box's best IoU with a prediction of its class, over all of them."""
    total, count = 0.0, 0
    for predicted, target in zip(predictions, targets, strict=True):
        count += len(target.labels)
        for label in np.unique(target.labels):
            truth = target.boxes[target.labels == label]
            guesses = predicted.boxes[predicted.labels == label]
            if len(guesses):
                total += float(box_iou(truth, guesses).max(axis=1).sum())
    return total / count


def voc11_ap(recalls: np.ndarray, precisions: np.ndarray) -> float:
    """The 11-point interpolated AP: the mean over recall points t of the best precision at a
    recall of at least t (0 where none reaches it)."""
    points = [precisions[recalls >= t].max() if (recalls >= t).any() else 0.0 for t in _VOC_RECALLS]
    return float(sum(p / 11 for p in points))


def voc11_map(predictions: Sequence[Boxes], targets: Sequence[Boxes]) -> float:
    """PASCAL VOC 2007's mAP at IoU 0.5 with 11-point AP (see the module's docstring)."""
    aps = []
    for label in _classes(targets):
        truths = [t.boxes[t.labels == label] for t in targets]
        positives = sum(len(t) for t in truths)
        image, score, box = [], [], []
        for i, p in enumerate(predictions):
            mine = p.labels == label
            image += [i] * int(mine.sum())
            score.append(p.scores[mine])
            box.append(p.boxes[mine])
        scores, boxes = np.concatenate(score), np.concatenate(box).reshape(-1, 4)
        # Stable: of equal scores, the earlier image's (and the earlier box's) goes first.
        order = np.argsort(-scores, kind="stable")
        taken = [np.zeros(len(t), dtype=bool) for t in truths]
        hits = np.zeros(len(order))
        for rank, k in enumerate(order):
            truth = truths[image[k]]
            if not len(truth):
                continue
            overlaps = box_iou(boxes[k : k + 1], truth)[0]
            best = int(overlaps.argmax())
            if overlaps[best] >= VOC_IOU and not taken[image[k]][best]:
                taken[image[k]][best] = True
                hits[rank] = 1
        true_positives = np.cumsum(hits)
        recalls = true_positives / positives
        precisions = true_positives / np.arange(1, len(order) + 1)
        aps.append(voc11_ap(recalls, precisions))
    return float(np.mean(aps))


def coco_map(
    predictions: Sequence[Boxes], targets: Sequence[Boxes], backend: str | None = None
) -> dict[str, float]:
    """COCO's `map` (IoU 0.50:0.95), `map_50` and `map_75`, at up to 100 predictions an image.

    Args:
        backend: `faster_coco_eval` or `pycocotools` (None: the first of them installed).

    Raises:
        ImportError: neither is installed.
    """
    if not any(len(p.labels) for p in predictions):  # COCO's loaders refuse no results
        return {"map": 0.0, "map_50": 0.0, "map_75": 0.0}
    coco, evaluator = _backend(backend)
    images = [{"id": i + 1, "width": 0, "height": 0} for i in range(len(targets))]
    labels = np.unique(np.concatenate([t.labels for t in (*targets, *predictions)]))
    # COCO's category and annotation ids start at 1 (0 reads as "none" in places).
    categories = [{"id": int(c) + 1, "name": str(int(c))} for c in labels]
    annotations = [
        {
            "id": n + 1,
            "image_id": i + 1,
            "category_id": int(label) + 1,
            "bbox": _xywh(box),
            "area": float((box[2] - box[0]) * (box[3] - box[1])),
            "iscrowd": 0,
        }
        for n, (i, box, label) in enumerate(
            (i, box, label)
            for i, t in enumerate(targets)
            for box, label in zip(t.boxes, t.labels, strict=True)
        )
    ]
    results = [
        {"image_id": i + 1, "category_id": int(label) + 1, "bbox": _xywh(box), "score": float(s)}
        for i, p in enumerate(predictions)
        for box, label, s in zip(p.boxes, p.labels, p.scores, strict=True)
    ]
    # pycocotools prints its progress; faster-coco-eval logs it. Neither belongs in a trial.
    with contextlib.redirect_stdout(io.StringIO()):
        truth = coco()
        truth.dataset = {"images": images, "annotations": annotations, "categories": categories}
        truth.createIndex()
        evaluation = evaluator(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = evaluation.stats
    return {"map": float(stats[0]), "map_50": float(stats[1]), "map_75": float(stats[2])}


def _xywh(box: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    """faster-coco-eval's progress messages, dropped."""


def _backend(name: str | None) -> tuple[Any, Any]:
    """(COCO, COCOeval) of faster-coco-eval or pycocotools."""
    tried = ("faster_coco_eval", "pycocotools") if name is None else (name,)
    for backend in tried:
        try:
            if backend == "faster_coco_eval":
                from faster_coco_eval import COCO, COCOeval_faster

                return (
                    functools.partial(COCO, print_function=_quiet),
                    functools.partial(COCOeval_faster, print_function=_quiet),
                )
            if backend == "pycocotools":
                from pycocotools.coco import COCO as PyCOCO
                from pycocotools.cocoeval import COCOeval

                return PyCOCO, COCOeval
        except ImportError:
            continue
        raise ValueError(f"unknown COCO backend {backend!r}; use faster_coco_eval or pycocotools")
    raise ImportError(f"the metrics map, map_50 and map_75 need faster-coco-eval; {_INSTALL}")
