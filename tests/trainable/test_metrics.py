"""Every metric of `MetricSet` is scikit-learn's, on random predictions of every kind of
output; the names are checked before any trial, and the spec's metric must be reported."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from hpo.trainable.config import TrainableConfig, reported_metrics
from hpo.trainable.data import Task
from hpo.trainable.detection import DETECTION_METRICS
from hpo.trainable.metrics import METRICS, MetricSet, check_metrics

AVERAGES = ("macro", "micro", "weighted")


def _feed(metric_set: MetricSet, outputs: torch.Tensor, targets: torch.Tensor) -> None:
    """In batches of uneven size, as a loader's last batch is."""
    for start in range(0, len(outputs), 37):
        metric_set.update(outputs[start : start + 37], targets[start : start + 37])


def _prf(y_true, y_pred, average: str) -> dict[str, float]:
    kwargs = {"average": average, "zero_division": 0}
    return {
        "f1": skm.f1_score(y_true, y_pred, **kwargs),
        "precision": skm.precision_score(y_true, y_pred, **kwargs),
        "recall": skm.recall_score(y_true, y_pred, **kwargs),
    }


@pytest.mark.parametrize("seed", range(4))
def test_multiclass_metrics_are_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(200, 5))
    logits[:, 4] -= 3  # class 4 is rarely predicted
    y = rng.integers(0, 4, size=200)  # and never true
    y[:4] = [0, 1, 2, 3]
    names = ["accuracy", "top2_accuracy", "top3_accuracy", "f1", "precision", "recall"]
    names += [f"{m}_{a}" for m in ("f1", "precision", "recall") for a in AVERAGES]
    got = MetricSet(names, Task.CLASSIFICATION, "cpu")
    _feed(got, torch.tensor(logits), torch.tensor(y))
    pred = logits.argmax(1)
    probs = torch.tensor(logits[:, :4]).softmax(1).numpy()  # class 4 has no true sample
    expected = {
        "val_accuracy": skm.accuracy_score(y, pred),
        "val_top2_accuracy": skm.top_k_accuracy_score(y, logits, k=2, labels=range(5)),
        "val_top3_accuracy": skm.top_k_accuracy_score(y, logits, k=3, labels=range(5)),
        **{f"val_{m}": v for m, v in _prf(y, pred, "macro").items()},
        **{f"val_{m}_{a}": v for a in AVERAGES for m, v in _prf(y, pred, a).items()},
    }
    assert got.compute("val") == pytest.approx(expected, rel=1e-12)
    # AUROC is defined when every class has samples (torchmetrics, in float32).
    four = MetricSet(["auroc"], Task.CLASSIFICATION, "cpu")
    _feed(four, torch.tensor(logits[:, :4]), torch.tensor(y))
    assert four.compute("val")["val_auroc"] == pytest.approx(
        skm.roc_auc_score(y, probs, multi_class="ovr"), abs=1e-6
    )


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("loss", ["bce_with_logits", "cross_entropy"])
def test_binary_metrics_are_scikit_learns(seed, loss):
    """One logit and 0/1 float targets (BCE), or two logits and class indices (cross-entropy)."""
    rng = np.random.default_rng(seed)
    score = rng.normal(size=150)
    y = (rng.random(150) < 0.3).astype(np.int64)
    if loss == "bce_with_logits":
        outputs, targets = torch.tensor(score)[:, None], torch.tensor(y, dtype=torch.float32)
    else:
        outputs, targets = torch.tensor(np.stack([-score / 2, score / 2], 1)), torch.tensor(y)
    names = ["accuracy", "auroc", "f1", "precision", "recall"]
    names += [f"{m}_{a}" for m in ("f1", "precision", "recall") for a in (*AVERAGES, "binary")]
    got = MetricSet(names, Task.CLASSIFICATION, "cpu", loss_name=loss)
    _feed(got, outputs, targets)
    pred = (score > 0).astype(np.int64)
    expected = {
        "val_accuracy": skm.accuracy_score(y, pred),
        **{f"val_{m}": v for m, v in _prf(y, pred, "macro").items()},
        **{f"val_{m}_{a}": v for a in (*AVERAGES, "binary") for m, v in _prf(y, pred, a).items()},
    }
    values = got.compute("val")
    assert values.pop("val_auroc") == pytest.approx(skm.roc_auc_score(y, score), abs=1e-6)
    assert values == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_multilabel_metrics_are_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(120, 4))
    y = (rng.random((120, 4)) < [0.5, 0.2, 0.05, 0.7]).astype(np.int64)
    y[:2, 2] = 1  # every label is true somewhere (AUROC needs it)
    logits[:, 2] -= 5  # label 2 is never predicted: its precision is 0/0
    names = ["accuracy", "exact_match", "auroc", "f1", "precision", "recall"]
    names += [f"{m}_{a}" for m in ("f1", "precision", "recall") for a in AVERAGES]
    got = MetricSet(names, Task.CLASSIFICATION, "cpu", loss_name="bce_with_logits")
    _feed(got, torch.tensor(logits), torch.tensor(y, dtype=torch.float32))
    pred = (logits > 0).astype(np.int64)
    expected = {
        # Of every (sample, label) decision; scikit-learn's accuracy_score is exact_match.
        "val_accuracy": 1 - skm.hamming_loss(y, pred),
        "val_exact_match": skm.accuracy_score(y, pred),
        **{f"val_{m}": v for m, v in _prf(y, pred, "macro").items()},
        **{f"val_{m}_{a}": v for a in AVERAGES for m, v in _prf(y, pred, a).items()},
    }
    values = got.compute("val")
    probs = torch.tensor(logits).sigmoid().numpy()
    assert values.pop("val_auroc") == pytest.approx(skm.roc_auc_score(y, probs), abs=1e-6)
    assert values == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shape", [(90,), (90, 1), (90, 3)])
def test_regression_metrics_are_scikit_learns(shape):
    rng = np.random.default_rng(len(shape))
    y = rng.normal(loc=5, size=shape)
    pred = y + rng.normal(scale=0.5, size=shape)
    got = MetricSet(["mse", "mae", "rmse", "r2"], Task.REGRESSION, "cpu")
    _feed(got, torch.tensor(pred), torch.tensor(y))
    assert got.compute("val") == pytest.approx(
        {
            "val_mse": skm.mean_squared_error(y, pred),
            "val_mae": skm.mean_absolute_error(y, pred),
            "val_rmse": skm.root_mean_squared_error(y, pred),
            "val_r2": skm.r2_score(y, pred),
        },
        rel=1e-10,
    )


def test_r2_of_a_constant_target_is_finite():
    y = torch.ones(50, dtype=torch.float64)
    for pred, expected in ((y, 1.0), (y + 1, 0.0)):
        got = MetricSet(["r2"], Task.REGRESSION, "cpu")
        _feed(got, pred, y)  # in two batches: merged exactly, so the variance stays 0
        assert skm.r2_score(y, pred) == expected
        assert got.compute("v") == {"v_r2": expected}


def test_the_defaults_keep_todays_names_and_each_compute_starts_again():
    got = MetricSet(None, Task.CLASSIFICATION, "cpu")
    got.update(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0]))
    assert set(got.compute("val")) == {"val_accuracy", "val_f1", "val_precision", "val_recall"}
    got.update(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
    assert got.compute("test")["test_accuracy"] == 1.0  # the first batch is forgotten
    with pytest.raises(RuntimeError, match="without a batch"):
        got.compute("val")
    regression = MetricSet(None, Task.REGRESSION, "cpu")
    regression.update(torch.zeros(3), torch.ones(3))
    assert regression.compute("val") == {"val_mse": 1.0, "val_mae": 1.0, "val_r2": 0.0}


def test_counts_made_in_inference_mode_are_added_to_outside_it():
    got = MetricSet(["accuracy"], Task.CLASSIFICATION, "cpu")
    outputs, targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    for mode in (torch.inference_mode, torch.no_grad, torch.inference_mode):
        with mode():
            got.update(outputs, targets)
            assert got.compute("val") == {"val_accuracy": 0.5}
    regression = MetricSet(None, Task.REGRESSION, "cpu")
    for mode in (torch.inference_mode, torch.no_grad):
        with mode():
            regression.update(torch.zeros(3), torch.arange(3.0))
        assert regression.compute("val")["val_mae"] == 1.0


def test_a_users_metric_gets_the_whole_split(tmp_path, monkeypatch):
    (tmp_path / "my_metrics.py").write_text(
        "def worst_error(outputs, targets):\n"
        "    return (outputs.reshape(targets.shape) - targets).abs().max()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    got = MetricSet(["mae", "my_metrics:worst_error"], Task.REGRESSION, "cpu")
    _feed(got, torch.arange(100.0)[:, None], torch.zeros(100))
    assert got.compute("val") == {"val_mae": 49.5, "val_worst_error": 99.0}


def test_outputs_that_do_not_fit_a_metric_fail_at_the_first_batch():
    with pytest.raises(ValueError, match=r"'top5_accuracy' needs more than 5 classes.*has 3"):
        MetricSet(["top5_accuracy"], Task.CLASSIFICATION, "cpu").update(
            torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="need two classes, but the model has 3"):
        MetricSet(["f1_binary"], Task.CLASSIFICATION, "cpu").update(
            torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
        )
    # A user's loss with one output: binary, which top-k does not apply to.
    with pytest.raises(ValueError, match=r"'top5_accuracy' does not apply.*binary"):
        MetricSet(["top5_accuracy"], Task.CLASSIFICATION, "cpu", loss_name="my:loss").update(
            torch.zeros(4, 1), torch.zeros(4)
        )


# --- names, before any trial ---------------------------------------------------------------

BAD_METRICS = [
    # (task, loss, metrics, what the message must say)
    (Task.CLASSIFICATION, "auto", ["acuracy"], ["unknown metric 'acuracy'", "did you mean 'accuracy'", "available: accuracy, auroc", "'package.module:function'"]),
    (Task.CLASSIFICATION, "auto", ["f1_macr"], ["did you mean 'f1_macro'", "topK_accuracy"]),
    (Task.REGRESSION, "auto", ["rmsee"], ["did you mean 'rmse'"]),
    (Task.CLASSIFICATION, "auto", ["mse"], ["'mse' does not apply to multi-class classification", "it is for regression", "metrics for multi-class classification: accuracy"]),
    (Task.REGRESSION, "auto", ["accuracy"], ["'accuracy' does not apply to regression", "metrics for regression: mae, mse, r2, rmse"]),
    (Task.REGRESSION, "huber", ["auroc"], ["'auroc' does not apply to regression"]),
    (Task.CLASSIFICATION, "bce_with_logits", ["top5_accuracy"], ["does not apply to binary classification or multi-label classification (loss bce_with_logits)", "it is for multi-class"]),
    (Task.CLASSIFICATION, "auto", ["exact_match"], ["'exact_match' does not apply to multi-class", "for multi-label classification"]),
    (Task.CLASSIFICATION, "auto", ["top3_accurcy"], ["unknown metric 'top3_accurcy'", "did you mean 'top5_accuracy'"]),
    (Task.CLASSIFICATION, "auto", ["f1", "f1"], ["'f1' is listed twice"]),
    (Task.CLASSIFICATION, "auto", ["a:score", "b:score"], ["'b:score' and 'a:score'", "'val_score'"]),
    (Task.CLASSIFICATION, "auto", ["not a reference:"], ["is not a reference of the form"]),
]  # fmt: skip


@pytest.mark.parametrize(("task", "loss", "names", "says"), BAD_METRICS)
def test_bad_metric_names_say_what_there_is(task, loss, names, says):
    with pytest.raises(ValueError) as caught:
        check_metrics(names, task, loss)
    for part in says:
        assert part in str(caught.value)


def test_the_config_checks_metrics_at_their_key_against_the_datas_task():
    with pytest.raises(ValueError) as caught:
        TrainableConfig.model_validate({"data": {"name": "diabetes"}, "metrics": ["f1"]})
    (error,) = caught.value.errors()
    assert error["loc"] == ("metrics",)
    assert "'f1' does not apply to regression" in error["msg"]
    detection = {"name": "my_pkg.data:boxes", "task": "detection"}
    for name in METRICS:  # every registered name is accepted where it applies
        data = {"name": "diabetes" if name in ("mse", "mae", "rmse", "r2") else "iris"}
        TrainableConfig.model_validate(
            {
                "data": detection if name in DETECTION_METRICS else data,
                "loss": {"name": "bce_with_logits" if name == "exact_match" else "auto"},
                "metrics": [name],
            }
        )


def test_reported_metrics_follow_the_metrics_list():
    epoch = ["epoch", "train_loss", "val_loss", "lr", "grad_norm", "epoch_time_s"]
    epoch += ["peak_memory_mb", "micro_batches"]
    epoch += ["n_params", "model_size_mb", "inference_ms"]
    classifier = TrainableConfig.model_validate({"data": {"name": "digits"}})
    assert reported_metrics(classifier) == [
        *epoch,
        *("val_accuracy", "val_f1", "val_precision", "val_recall"),
    ]
    assert reported_metrics(classifier.data) == reported_metrics(classifier)
    regressor = TrainableConfig.model_validate({"data": {"name": "diabetes"}, "metric": "val_r2"})
    assert reported_metrics(regressor) == [*epoch, "val_mse", "val_mae", "val_r2"]
    chosen = TrainableConfig.model_validate(
        {
            "metrics": ["top5_accuracy", "f1_micro", "my_pkg.scores:balanced"],
            "metric": "val_balanced",
            "mode": "max",
        }
    )
    assert reported_metrics(chosen) == [
        *epoch,
        *("val_top5_accuracy", "val_f1_micro", "val_balanced"),
    ]
    with pytest.raises(
        ValueError,
        match=r"does not report 'val_accuracy' for dataset 'digits' and metrics \['f1_micro'\]; choose one of: epoch, .*val_f1_micro",
    ):
        TrainableConfig.model_validate({"metrics": ["f1_micro"], "metric": "val_accuracy"})


def test_the_metric_names_import_no_torch():
    code = (
        "import sys; from hpo.trainable.config import TrainableConfig;"
        "TrainableConfig.model_validate({'metrics': ['auroc'], 'loss': {'name': 'cross_entropy'}});"
        "assert 'torch' not in sys.modules and 'torchmetrics' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torchmetrics_is_imported_only_for_auroc():
    code = (
        "import sys, torch; from hpo.trainable.metrics import MetricSet; from hpo.trainable.data import Task\n"
        "m = MetricSet(None, Task.CLASSIFICATION, 'cpu'); m.update(torch.zeros(2, 3), torch.zeros(2).long()); m.compute('val')\n"
        "assert 'torchmetrics' not in sys.modules\n"
        "m = MetricSet(['auroc'], Task.CLASSIFICATION, 'cpu'); m.update(torch.randn(4, 2), torch.tensor([0, 1, 0, 1])); m.compute('val')\n"
        "assert 'torchmetrics' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _rank(rank: int, init: str, results) -> None:
    """One process of a gloo group: its half of the samples, then the group's metrics."""
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        rng = np.random.default_rng(0)
        logits, y = torch.tensor(rng.normal(size=(60, 3))), torch.tensor(rng.integers(0, 3, 60))
        pred, target = torch.tensor(rng.normal(size=60)), torch.tensor(rng.normal(size=60))
        mine = slice(0, 25) if rank == 0 else slice(25, 60)  # uneven shares
        classes = MetricSet(["accuracy", "f1", "auroc"], Task.CLASSIFICATION, "cpu")
        classes.update(logits[mine], y[mine])
        regression = MetricSet(["mse", "r2"], Task.REGRESSION, "cpu")
        regression.update(pred[mine], target[mine])
        results[rank] = classes.compute("val", sync=True) | regression.compute("val", sync=True)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # two fresh processes that import torch
def test_sync_gives_every_rank_the_groups_metrics(tmp_path):
    import torch.multiprocessing as mp

    results = mp.Manager().dict()
    mp.spawn(_rank, args=(f"file://{tmp_path / 'init'}", results), nprocs=2)
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(60, 3)), rng.integers(0, 3, 60)
    pred, target = rng.normal(size=60), rng.normal(size=60)
    expected = {
        "val_accuracy": skm.accuracy_score(y, logits.argmax(1)),
        "val_f1": skm.f1_score(y, logits.argmax(1), average="macro"),
        "val_auroc": skm.roc_auc_score(y, torch.tensor(logits).softmax(1), multi_class="ovr"),
        "val_mse": skm.mean_squared_error(target, pred),
        "val_r2": skm.r2_score(target, pred),
    }
    assert results[0] == results[1] == pytest.approx(expected, rel=1e-6)
