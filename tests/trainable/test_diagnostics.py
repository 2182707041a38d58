"""The best model's report as the guide makes it: confusion matrix and per-class table, or
residuals; class names from the spec or the dataset; and a trial evaluated on a split."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from hpo.trainable.data import Task
from hpo.trainable.diagnostics import MAX_POINTS, Predictions, class_names_of, diagnose
from hpo.trainable.evaluation import evaluate_trial


def logits_for(labels: list[int], k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(labels), k).float() * 5 - 1


def test_the_confusion_matrix_and_per_class_table_of_known_decisions():
    predictions = Predictions(Task.CLASSIFICATION)
    true, predicted = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]
    # Two batches, as an evaluation pass gives them.
    predictions.update(logits_for(predicted[:4], 3), torch.tensor(true[:4]))
    predictions.update(logits_for(predicted[4:], 3), torch.tensor(true[4:]))
    report = diagnose(predictions, ["cat", "dog", "eel"])
    assert report["classes"] == ["cat", "dog", "eel"]
    assert report["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]  # rows: true class
    rows = {row["class"]: row for row in report["per_class"]}
    # By hand: dog is predicted 3 times, right twice; its 2 samples are both found.
    assert rows["dog"]["precision"] == pytest.approx(2 / 3)
    assert rows["dog"]["recall"] == 1.0
    assert rows["dog"]["f1"] == pytest.approx(0.8)
    assert [rows[c]["support"] for c in ("cat", "dog", "eel")] == [2, 2, 2]
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["averages"]["macro avg"]["recall"] == pytest.approx((0.5 + 1 + 0.5) / 3)


def test_a_class_never_seen_still_has_its_row_and_column():
    predictions = Predictions(Task.CLASSIFICATION)
    predictions.update(logits_for([0, 1], 4), torch.tensor([0, 1]))
    report = diagnose(predictions, ["a", "b", "c", "d"])
    assert np.array(report["confusion"]).shape == (4, 4)
    assert report["per_class"][3] == {
        "class": "d",
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }


def test_a_binary_model_with_one_logit_gives_a_two_by_two_matrix():
    predictions = Predictions(Task.CLASSIFICATION)
    predictions.update(torch.tensor([[2.0], [-1.0], [0.5], [-3.0]]), torch.tensor([1, 1, 0, 0]))
    assert diagnose(predictions)["confusion"] == [[1, 1], [1, 1]]


def test_regression_residuals_and_points():
    predictions = Predictions(Task.REGRESSION)
    true = torch.arange(5000, dtype=torch.float32)
    predictions.update(true + 2.0, true)
    report = diagnose(predictions)
    residuals = report["residuals"]
    assert residuals["mean"] == pytest.approx(2.0) and residuals["rmse"] == pytest.approx(2.0)
    assert residuals["count"] == 5000 and residuals["std"] == pytest.approx(0.0, abs=1e-6)
    points = report["points"]
    assert len(points["true"]) == MAX_POINTS
    assert points["predicted"][10] - points["true"][10] == pytest.approx(2.0)
    assert points["true"][0] == 0 and points["true"][-1] == 4999  # the sample spans the split


def test_an_empty_pass_is_an_error():
    with pytest.raises(ValueError, match="saw no sample"):
        diagnose(Predictions(Task.CLASSIFICATION))


class Pets(torch.utils.data.Dataset):
    classes: ClassVar[list[str]] = ["cat", "dog"]
    targets: ClassVar[list[int]] = [0, 1] * 4

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return torch.full((2,), float(self.targets[index])), self.targets[index]


def test_class_names_from_the_spec_then_the_dataset_then_the_numbers():
    wrapped = Subset(Subset(Pets(), [0, 1, 2]), [0, 1])
    assert class_names_of(None, [wrapped], 2) == ["cat", "dog"]
    assert class_names_of(["c", "d"], [wrapped], 2) == ["c", "d"]
    assert class_names_of(None, [None, object()], 3) == ["0", "1", "2"]
    with pytest.raises(ValueError, match=r"data\.class_names names 3 classes, but the model has 2"):
        class_names_of(["a", "b", "c"], [wrapped], 2)


def pets(config: dict) -> Pets:
    return Pets()


@pytest.mark.usefixtures("one_torch_thread")
def test_a_trial_evaluated_on_its_test_split_has_a_ten_by_ten_matrix(digits):
    config = {"data": {"test_fraction": 0.2}, "training": {"epochs": 2}, "seed": 1}
    evaluation = evaluate_trial(config, digits, checkpoint=None, epochs=2, split="test")
    report = evaluation.report
    confusion = np.array(report["confusion"])
    assert confusion.shape == (10, 10) and report["classes"] == [str(n) for n in range(10)]
    assert confusion.sum() == sum(row["support"] for row in report["per_class"])
    assert evaluation.metrics["test_accuracy"] == pytest.approx(report["accuracy"], abs=1e-6)
    named = {**config, "data": {**config["data"], "class_names": list("abcdefghij")}}
    renamed = evaluate_trial(named, digits, checkpoint=None, epochs=2, split="val")
    assert renamed.report["classes"] == list("abcdefghij") and renamed.split == "val"
    assert renamed.metrics["val_accuracy"] == pytest.approx(renamed.report["accuracy"], abs=1e-6)


def test_class_names_do_not_change_a_trials_seed():
    from hpo.trainable.config import TrainableConfig
    from hpo.trainable.seeding import trial_seed

    plain = TrainableConfig.model_validate({"data": {"name": "digits"}})
    named = TrainableConfig.model_validate(
        {"data": {"name": "digits", "class_names": list("abcdefghij")}}
    )
    assert trial_seed(plain) == trial_seed(named)


def test_class_names_of_a_regression_dataset_are_a_config_error():
    from hpo.trainable.config import TrainableConfig

    with pytest.raises(ValueError, match="dataset 'diabetes' is regression"):
        TrainableConfig.model_validate({"data": {"name": "diabetes", "class_names": ["a"]}})


@pytest.mark.usefixtures("one_torch_thread")
def test_a_users_dataset_names_its_classes():
    config = {
        "data": {"name": f"{__name__}:pets", "val_fraction": 0.25, "test_fraction": 0.25},
        "training": {"epochs": 1, "batch_size": 2},
        "model": {"hidden_size": 4, "num_layers": 1},
        "seed": 0,
    }
    evaluation = evaluate_trial(config, None, checkpoint=None, epochs=1, split="test")
    assert evaluation.report["classes"] == ["cat", "dog"]
