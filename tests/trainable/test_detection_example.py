"""examples/detection: the centre-point detector trained in hpo's loop beats a detector that
always answers the same box, in one process and as a search tuned on val_map_50; a Pipeline
whose boxes are malformed fails, naming the image and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import hpo
from examples.detection.pipeline import ShapesPipeline, fixed_box_baseline
from examples.detection.shapes import load

SPEC = Path(__file__).resolve().parents[2] / "examples" / "detection" / "spec.yaml"
TINY = {"train_images": 384, "val_images": 64}


def _config(**training: Any) -> dict[str, Any]:
    """The example spec's trainable sections, on tiny data."""
    spec = yaml.safe_load(SPEC.read_text())
    config = {k: spec[k] for k in ("metric", "mode", "seed", "metrics", "loss", "model", "loader")}
    return {
        **config,
        "data": {**spec["data"], **TINY},
        "training": {**spec["training"], **training},
    }


def _baseline() -> dict[str, float]:
    splits = load(TINY)
    return fixed_box_baseline(splits["train"], splits["val"])


@pytest.mark.slow  # three epochs of training: about 10 s on an idle CPU
def test_the_detector_beats_a_fixed_box_in_hpos_loop():
    baseline = _baseline()
    assert baseline["val_map_50"] < 0.05  # the same box everywhere finds almost nothing
    pipeline = ShapesPipeline(_config(epochs=3, batch_size=16))
    epochs = list(pipeline.run())
    last = epochs[-1]
    assert set(ShapesPipeline.__dict__) >= {"detections"}  # the one method it overrides
    assert last["val_map_50"] > baseline["val_map_50"] + 0.25, epochs
    assert last["val_mean_iou"] > baseline["val_mean_iou"]
    assert 0 <= last["val_map"] <= last["val_map_50"] <= 1
    assert last["train_loss"] < epochs[0]["train_loss"]


class OffByOnePipeline(ShapesPipeline):
    """Its decoder writes (x, y, w, h) where (x1, y1, x2, y2) belong: small boxes come out
    reversed."""

    def detections(self, outputs: Any) -> list[dict[str, torch.Tensor]]:
        found = super().detections(outputs)
        for image in found:
            boxes = image["boxes"]
            image["boxes"] = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2] - 20], 1)
        return found


def test_malformed_boxes_fail_the_epoch_naming_the_image_and_the_field():
    pipeline = OffByOnePipeline(_config(epochs=1, batch_size=32))
    with pytest.raises(ValueError, match=r"image 0 of the val split: predictions\[0\]\.boxes\["):
        pipeline.validate(1)  # untrained: its boxes are small, and come out reversed


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session", "workdir")
def test_the_example_spec_is_tuned_on_val_map_50_and_beats_the_fixed_box():
    baseline = _baseline()
    experiment = hpo.run(
        SPEC,
        data__train_images=TINY["train_images"],
        data__val_images=TINY["val_images"],
        training__epochs=3,
        training__batch_size=16,
        budget__num_samples=2,
        searcher__n_startup_trials=2,
        scheduler="fifo",
        tracking__tensorboard=False,
    )
    trials = experiment.trials()
    assert set(trials["status"]) == {"COMPLETED"}, trials["error"].tolist()
    assert trials["best.val_map_50"].max() > baseline["val_map_50"] + 0.2
    assert trials["final.val_mean_iou"].notna().all()
