"""Detection metrics: `map_50_voc11` and `mean_iou` are the PyTorch guide's `calculate_ap`
(11-point) and `calculate_iou`, on boxes written here; COCO's `map*` agree with pycocotools and
with values worked out by hand; malformed boxes fail, naming the image and the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from hpo.trainable import _detection_scores as scores
from hpo.trainable.config import LossConfig, TrainableConfig, reported_metrics
from hpo.trainable.data import Task
from hpo.trainable.detection import collate
from hpo.trainable.loaders import split_batch
from hpo.trainable.losses import build_loss
from hpo.trainable.metrics import MetricSet

ALL = ["map", "map_50", "map_75", "map_50_voc11", "mean_iou"]


# --- the guide's reference functions, as it writes them ------------------------------------------


def calculate_iou(box1, box2):
    """Calculate IoU between two boxes [x1, y1, x2, y2]"""
    x1 = max(box1[0], box2[0])
    y1 = max(box1[1], box2[1])
    x2 = min(box1[2], box2[2])
    y2 = min(box1[3], box2[3])

    intersection = max(0, x2 - x1) * max(0, y2 - y1)
    area1 = (box1[2] - box1[0]) * (box1[3] - box1[1])
    area2 = (box2[2] - box2[0]) * (box2[3] - box2[1])
    union = area1 + area2 - intersection

    return intersection / union if union > 0 else 0


def calculate_ap(recalls, precisions):
    """Calculate Average Precision using 11-point interpolation"""
    ap = 0
    for t in np.arange(0, 1.1, 0.1):
        if np.sum(recalls >= t) == 0:  # noqa: SIM108 (the guide's own words)
            p = 0
        else:
            p = np.max(precisions[recalls >= t])
        ap += p / 11
    return ap


def reference_voc11_map(predictions, targets, iou_threshold=0.5):
    """Per class: predictions by descending score, each matched to the ground-truth box of its
    image it overlaps most (calculate_iou); a second hit on a matched box is a false
    positive. Then calculate_ap, and the mean over the classes that have ground truth."""
    classes = sorted({int(label) for t in targets for label in t["labels"]})
    aps = []
    for c in classes:
        truth = {
            i: [b for b, label in zip(t["boxes"], t["labels"], strict=True) if label == c]
            for i, t in enumerate(targets)
        }
        positives = sum(len(boxes) for boxes in truth.values())
        found = [
            (float(s), i, b)
            for i, p in enumerate(predictions)
            for b, s, label in zip(p["boxes"], p["scores"], p["labels"], strict=True)
            if label == c
        ]
        found.sort(key=lambda d: -d[0])
        matched = {i: [False] * len(boxes) for i, boxes in truth.items()}
        tp, fp = [], []
        for _, i, box in found:
            ious = [calculate_iou(box, g) for g in truth[i]]
            best = int(np.argmax(ious)) if ious else -1
            if best >= 0 and ious[best] >= iou_threshold and not matched[i][best]:
                matched[i][best] = True
                tp.append(1)
                fp.append(0)
            else:
                tp.append(0)
                fp.append(1)
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recalls = tp / positives
        precisions = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        aps.append(calculate_ap(recalls, precisions))
    return float(np.mean(aps))


def reference_mean_iou(predictions, targets):
    """Each ground-truth box's best calculate_iou with a prediction of its class (0 if none)."""
    best = []
    for p, t in zip(predictions, targets, strict=True):
        for g, label in zip(t["boxes"], t["labels"], strict=True):
            ious = [
                calculate_iou(b, g)
                for b, pl in zip(p["boxes"], p["labels"], strict=True)
                if pl == label
            ]
            best.append(max(ious, default=0))
    return float(np.mean(best))


# --- a fixture of known boxes ----------------------------------------------------------------------


def _image(boxes: list[list[float]], labels: list[int], scores: list[float] | None = None):
    image = {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }
    if scores is not None:
        image["scores"] = torch.tensor(scores, dtype=torch.float32)
    return image


# Two classes over five images: hits, near misses, a duplicate, a wrong class, a missed box, an
# image with no object but a prediction, an image with objects but no prediction.
TARGETS = [
    _image([[10, 10, 30, 30], [40, 40, 60, 62]], [0, 1]),
    _image([[5, 5, 25, 20], [30, 2, 50, 22], [2, 40, 20, 58]], [0, 0, 1]),
    _image([], []),
    _image([[20, 20, 44, 40]], [1]),
    _image([[0, 0, 16, 16], [40, 0, 64, 20]], [0, 0]),
]
PREDICTIONS = [
    _image([[11, 10, 30, 31], [40, 42, 61, 60], [12, 12, 28, 29]], [0, 1, 0], [0.95, 0.9, 0.6]),
    _image(
        [[6, 5, 24, 21], [36, 8, 56, 28], [2, 40, 20, 58], [30, 3, 49, 22]],
        [0, 0, 0, 0],
        [0.8, 0.55, 0.7, 0.3],
    ),
    _image([[10, 10, 20, 20]], [1], [0.85]),
    _image([[21, 19, 43, 41], [22, 22, 30, 30]], [1, 1], [0.65, 0.4]),
    _image([], [], []),
]


def _metrics(names: list[str], predictions=PREDICTIONS, targets=TARGETS) -> dict[str, float]:
    """A MetricSet fed the images two at a time, as batches of an epoch."""
    metrics = MetricSet(names, Task.DETECTION, "cpu")
    for start in range(0, len(targets), 2):
        metrics.update(predictions[start : start + 2], targets[start : start + 2])
    return metrics.compute("val")


def test_voc11_map_and_mean_iou_are_the_guides_calculate_ap_and_calculate_iou():
    got = _metrics(["map_50_voc11", "mean_iou"])
    voc11 = reference_voc11_map(PREDICTIONS, TARGETS)
    mean_iou = reference_mean_iou(PREDICTIONS, TARGETS)
    assert 0.2 < voc11 < 0.9 and 0.3 < mean_iou < 0.9  # the fixture is neither trivial nor empty
    assert got["val_map_50_voc11"] == pytest.approx(voc11, abs=1e-6)
    assert got["val_mean_iou"] == pytest.approx(mean_iou, abs=1e-6)


def test_they_agree_on_random_boxes_too():
    rng = np.random.default_rng(7)
    targets, predictions = [], []
    for _ in range(30):
        n = int(rng.integers(0, 4))
        xy = rng.uniform(0, 40, (n, 2))
        truth = np.concatenate([xy, xy + rng.uniform(4, 20, (n, 2))], 1)
        guesses = truth + rng.normal(0, 3, truth.shape)
        guesses[:, 2:] = np.maximum(guesses[:, 2:], guesses[:, :2])
        extra = rng.uniform(0, 50, (2, 2))
        guesses = np.concatenate([guesses, np.concatenate([extra, extra + 8], 1)])
        targets.append(_image(truth.tolist(), rng.integers(0, 3, n).tolist()))
        predictions.append(
            _image(guesses.tolist(), rng.integers(0, 3, n + 2).tolist(), rng.random(n + 2).tolist())
        )
    got = _metrics(["map_50_voc11", "mean_iou"], predictions, targets)
    expected = reference_voc11_map(predictions, targets)
    assert got["val_map_50_voc11"] == pytest.approx(expected, abs=1e-6)
    assert got["val_mean_iou"] == pytest.approx(reference_mean_iou(predictions, targets), abs=1e-6)


def test_box_iou_is_calculate_iou_for_every_pair():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 25], [3, 3, 3, 3]], dtype=float)
    b = np.array([[0, 0, 10, 10], [8, 0, 20, 9], [30, 30, 40, 40], [3, 3, 3, 3]], dtype=float)
    expected = [[calculate_iou(x, y) for y in b] for x in a]
    np.testing.assert_allclose(scores.box_iou(a, b), expected, atol=1e-12)


def test_coco_map_by_hand():
    """Two boxes found at IoU 0.82 and 0.62: every threshold up to 0.60 finds both (AP 1);
    0.65 to 0.80 the first only, the better scored (COCO's 101 recall points: 51/101 of them
    at precision 1); 0.85 and up neither."""
    targets = [_image([[0, 0, 10, 10], [20, 20, 30, 30]], [3, 3])]
    predictions = [_image([[0, 0, 10, 8.2], [20, 20, 30, 26.2]], [3, 3], [0.9, 0.8])]
    got = _metrics(["map", "map_50", "map_75"], predictions, targets)
    assert got["val_map_50"] == pytest.approx(1.0)
    assert got["val_map_75"] == pytest.approx(51 / 101)
    assert got["val_map"] == pytest.approx((3 + 4 * 51 / 101) / 10)


def test_perfect_predictions_score_one_and_none_score_zero():
    # The image without objects gets no prediction either.
    perfect = [{**t, "scores": torch.ones(len(t["labels"]))} for t in TARGETS]
    assert all(v == pytest.approx(1.0) for v in _metrics(ALL, perfect).values())
    nothing = [_image([], [], []) for _ in TARGETS]
    assert all(v == 0.0 for v in _metrics(ALL, nothing).values())


def test_faster_coco_eval_gives_pycocotools_numbers():
    pytest.importorskip("pycocotools")
    truth = [scores.Boxes(t["boxes"].double().numpy(), t["labels"].numpy()) for t in TARGETS]
    found = [
        scores.Boxes(p["boxes"].double().numpy(), p["labels"].numpy(), p["scores"].double().numpy())
        for p in PREDICTIONS
    ]
    fast = scores.coco_map(found, truth, backend="faster_coco_eval")
    reference = scores.coco_map(found, truth, backend="pycocotools")
    assert 0 < fast["map"] < fast["map_50"] < 1
    assert fast == pytest.approx(reference, abs=1e-12)
    assert _metrics(["map", "map_50", "map_75"]) == pytest.approx(
        {f"val_{k}": v for k, v in fast.items()}, abs=1e-12
    )


def test_an_unknown_coco_backend_is_named():
    found = [scores.Boxes(np.zeros((1, 4)), np.zeros(1, dtype=np.int64), np.ones(1))]
    with pytest.raises(ValueError, match="unknown COCO backend 'cocoapi'"):
        scores.coco_map(found, found, backend="cocoapi")


# --- malformed boxes --------------------------------------------------------------------------------


def _broken(kind: str, index: int, **fields: Any) -> tuple[list[dict], list[dict]]:
    """The fixture with one image's fields replaced (None: removed)."""
    predictions = [dict(p) for p in PREDICTIONS]
    targets = [dict(t) for t in TARGETS]
    images = predictions if kind == "predictions" else targets
    for field, value in fields.items():
        if value is None:
            del images[index][field]
        else:
            images[index][field] = value
    return predictions, targets


NAN = float("nan")
MALFORMED = [
    # (what is broken, what the message must say)
    (_broken("predictions", 3, scores=None), ["predictions[3]", "image 3", "has no scores"]),
    (
        _broken("predictions", 1, boxes=torch.zeros(4, 5)),
        ["predictions[1].boxes", "image 1", "shape [4, 5], not (n, 4)"],
    ),
    (
        _broken("targets", 3, labels=torch.tensor([1.0])),
        ["targets[3].labels", "image 3", "dtype torch.float32", "integer"],
    ),
    (
        _broken("predictions", 0, labels=torch.tensor([0, 1])),
        ["predictions[0].labels", "image 0", "shape [2]", "its boxes are 3"],
    ),
    (
        _broken("targets", 4, boxes=[[0, 0, 16, 16]]),
        ["targets[4].boxes", "image 4", "is a list, not a tensor"],
    ),
    (
        _broken("predictions", 2, boxes=torch.tensor([[10.0, 10, 5, 20]])),
        [
            "image 2 of the val split",
            "predictions[2].boxes[0] = [10.0, 10.0, 5.0, 20.0]",
            "x2 < x1",
        ],
    ),
    (
        _broken(
            "targets", 1, boxes=torch.tensor([[5.0, 5, 25, 20], [30, 2, 50, 22], [2, 4, 9, NAN]])
        ),
        ["image 1 of the val split", "targets[1].boxes[2]", "is not finite"],
    ),
    (
        _broken("predictions", 3, scores=torch.tensor([0.5, float("inf")])),
        ["image 3 of the val split", "predictions[3].scores[1] is inf"],
    ),
    (
        _broken("targets", 0, labels=torch.tensor([0, -1])),
        ["image 0 of the val split", "targets[0].labels[1] is -1"],
    ),
]


@pytest.mark.parametrize(("broken", "says"), MALFORMED)
def test_malformed_boxes_fail_naming_the_image_and_the_field(broken, says):
    predictions, targets = broken
    with pytest.raises(ValueError) as caught:
        _metrics(ALL, predictions, targets)
    for part in says:
        assert part in str(caught.value)


def test_predictions_for_another_number_of_images_fail():
    metrics = MetricSet(ALL, Task.DETECTION, "cpu")
    with pytest.raises(ValueError, match="predictions for 1 images but targets for 2"):
        metrics.update(PREDICTIONS[:1], TARGETS[:2])
    with pytest.raises(ValueError, match="a list with one dict per image, but got a dict"):
        metrics.update(PREDICTIONS[0], TARGETS[0])


def test_a_split_without_objects_has_no_detection_metrics():
    metrics = MetricSet(["mean_iou"], Task.DETECTION, "cpu")
    metrics.update([PREDICTIONS[2]], [TARGETS[2]])
    with pytest.raises(ValueError, match="the val split's 1 images hold no ground-truth box"):
        metrics.compute("val")


def boxes_found(predictions: list[dict], targets: list[dict]) -> float:
    """A user's own detection metric (`metrics: [tests.trainable.test_detection_metrics:
    boxes_found]`): the boxes predicted in the split, which must arrive whole."""
    assert len(predictions) == len(targets) == len(TARGETS)
    assert all(set(p) == {"boxes", "scores", "labels"} for p in predictions)
    return sum(len(p["boxes"]) for p in predictions)


def test_a_users_detection_metric_gets_every_image():
    got = _metrics(["mean_iou", "tests.trainable.test_detection_metrics:boxes_found"])
    assert got["val_boxes_found"] == 10
    assert set(got) == {"val_mean_iou", "val_boxes_found"}


# --- the config and the batches ------------------------------------------------------------------

DETECTION_DATA = {"name": "my_pkg.data:boxes", "task": "detection"}


def test_detection_data_reports_the_detection_metrics_by_default():
    config = TrainableConfig.model_validate(
        {"data": DETECTION_DATA, "metric": "val_map_50", "mode": "max"}
    )
    assert reported_metrics(config)[-4:] == ["val_map", "val_map_50", "val_map_75", "val_mean_iou"]
    config = TrainableConfig.model_validate(
        {"data": DETECTION_DATA, "metrics": ["map_50_voc11"], "metric": "val_map_50_voc11"}
    )
    assert reported_metrics(config)[-1] == "val_map_50_voc11"


def test_detection_metrics_are_refused_for_a_classifier_and_the_other_way_round():
    with pytest.raises(ValueError, match="metric 'map_50' does not apply to multi-class"):
        TrainableConfig.model_validate({"data": {"name": "digits"}, "metrics": ["map_50"]})
    with pytest.raises(ValueError, match="metric 'accuracy' does not apply to detection"):
        TrainableConfig.model_validate({"data": DETECTION_DATA, "metrics": ["accuracy"]})


def test_loss_auto_of_detection_is_the_pipelines_own_and_fails_if_it_has_none():
    TrainableConfig.model_validate({"data": DETECTION_DATA})  # setup_optimizer may set it
    with pytest.raises(ValueError, match="hpo has no detection loss of its own: name yours"):
        build_loss(LossConfig(), Task.DETECTION, "cpu")


def test_detection_batches_keep_a_target_dict_per_image():
    items = [(torch.zeros(1, 4, 4), TARGETS[i]) for i in range(3)]
    images, targets = collate(items)
    assert images.shape == (3, 1, 4, 4)
    assert all(got is given for got, given in zip(targets, TARGETS[:3], strict=True))
    _, moved = split_batch((images, targets), "labels", torch.device("cpu"))
    assert [len(t["boxes"]) for t in moved] == [2, 3, 0]
    with pytest.raises(TypeError, match=r"\(image, \{'boxes'"):
        collate([torch.zeros(3)])
