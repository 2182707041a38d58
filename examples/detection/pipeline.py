"""Detection in hpo's loop: `ShapesPipeline` decodes the detector's maps into boxes.

From the repository root (`pip install 'hpo[detection]'` for COCO's mAP):

    hpo run examples/detection/spec.yaml

The spec names the data function (`shapes.load`), the model (`model.CentreNet`) and its loss
(`model.centre_loss`), `data.task: detection` and the detection metrics; hpo's `train_epoch`
trains on the loss as on any other (mixed precision, accumulation, clipping), its `validate`
computes `val_loss` on the raw maps and hands `detections(outputs)` of each batch, with the
targets, to the metrics. `fixed_box_baseline` scores the detector that always answers the
training set's mean box, of each class: what a trained one has to beat.
"""

from __future__ import annotations

from typing import Any

import torch

import hpo
from examples.detection.model import decode
from examples.detection.shapes import CLASSES, Shapes
from hpo.trainable.data import Task
from hpo.trainable.metrics import MetricSet

METRICS = ["map", "map_50", "map_75", "map_50_voc11", "mean_iou"]


class ShapesPipeline(hpo.Pipeline):
    """hpo's Pipeline with the detector's maps decoded into `{boxes, scores, labels}`."""

    TOP_K = 10  # boxes kept per image (at most 3 shapes are in one)

    def detections(self, outputs: Any) -> list[dict[str, torch.Tensor]]:
        return decode(outputs, top_k=self.TOP_K)


def fixed_box_baseline(train: Shapes, val: Shapes) -> dict[str, float]:
    """The metrics on `val` of the same box in every image, the mean box of `train`, once
    for each class (score 1): a detector that learned nothing of where the shapes are."""
    mean_box = torch.cat([target["boxes"] for _, target in train]).mean(0)
    metrics = MetricSet(METRICS, Task.DETECTION, "cpu")
    guess = {
        "boxes": mean_box.repeat(len(CLASSES), 1),
        "scores": torch.ones(len(CLASSES)),
        "labels": torch.arange(len(CLASSES)),
    }
    targets = [target for _, target in val]
    metrics.update([guess] * len(targets), targets)
    return metrics.compute("val")


if __name__ == "__main__":
    from examples.detection.shapes import load

    splits = load({})
    print("fixed-box baseline:", fixed_box_baseline(splits["train"], splits["val"]))
