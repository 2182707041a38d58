"""The training loops, run without Ray: metrics, seeds, accumulation, early stopping, resume."""

import math

import numpy as np
import pytest
import torch

from hpo.trainable import TrainableConfig, load_dataset
from hpo.trainable.checkpoint import load_checkpoint, save_checkpoint
from hpo.trainable.config import FINAL_KEY, DataConfig, reported_metrics
from hpo.trainable.loop import Trainer, fit, trial_seed

# Tiny models train fastest on one thread, and the test machine's cores are shared.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def diabetes():
    return load_dataset(DataConfig(name="diabetes"))


def test_fit_reports_every_metric_each_epoch_and_learns(digits):
    epochs = list(fit({"training": {"epochs": 8}, "optimizer": {"lr": 3e-3}}, digits))
    assert [m["epoch"] for m in epochs] == list(range(1, 9))
    for metrics in epochs:
        assert set(reported_metrics(DataConfig(name="digits"))) <= set(metrics)
    last = epochs[-1]
    assert last["val_accuracy"] > 0.93
    assert 0.9 < last["val_f1"] <= 1 and 0.9 < last["val_precision"] <= 1
    assert 0.9 < last["val_recall"] <= 1
    assert last["train_loss"] < epochs[0]["train_loss"]
    assert last["lr"] == 3e-3 and last["grad_norm"] > 0 and last["epoch_time_s"] > 0
    assert [m[FINAL_KEY] for m in epochs] == [False] * 7 + [True]


def test_regression_reports_errors_in_the_target_units(diabetes):
    epochs = list(fit({"data": {"name": "diabetes"}, "training": {"epochs": 15}}, diabetes))
    last = epochs[-1]
    assert set(reported_metrics(DataConfig(name="diabetes"))) <= set(last)
    assert "val_accuracy" not in last
    # The targets are standardised for training; the errors are reported in their own units
    # (diabetes progression, about 25..346), so MSE is in the thousands and R² is sensible.
    assert 1000 < last["val_mse"] < 6000
    assert 20 < last["val_mae"] < 70
    assert 0.2 < last["val_r2"] < 1
    assert last["val_loss"] == pytest.approx(last["val_mse"] / np.var(diabetes.y), rel=0.2)


def test_same_config_trains_the_same_and_another_seed_differently(digits):
    config = {"training": {"epochs": 2}, "model": {"dropout": 0.2}, "augment": {"noise_std": 0.1}}
    assert list(fit(config, digits))[-1]["val_loss"] == list(fit(config, digits))[-1]["val_loss"]
    reseeded = list(fit({**config, "seed": 1}, digits))[-1]["val_loss"]
    assert reseeded != list(fit(config, digits))[-1]["val_loss"]


def test_trial_seed_follows_the_master_seed_and_the_config_but_not_bookkeeping():
    base = TrainableConfig()
    assert trial_seed(base) == trial_seed(TrainableConfig())
    assert trial_seed(base) != trial_seed(TrainableConfig(seed=1))
    assert trial_seed(base) != trial_seed(TrainableConfig(optimizer={"lr": 0.01}))
    # Checkpointing or early stopping must not change the epochs that do run.
    same = TrainableConfig(checkpoint={"every": 2}, early_stopping={"patience": 3})
    assert trial_seed(base) == trial_seed(same)


def test_diverging_loss_fails_the_trial(digits):
    config = {"training": {"epochs": 5}, "optimizer": {"name": "sgd", "lr": 1e12}}
    with pytest.raises(FloatingPointError, match="gradient norm became inf in epoch 1, step"):
        list(fit(config, digits))


def test_invalid_config_is_rejected(digits):
    with pytest.raises(ValueError, match="hidden_size"):
        list(fit({"model": {"hidden_size": 0}}, digits))
    assert TrainableConfig().model.name == "mlp"


def test_accumulating_k_batches_equals_one_k_times_larger_batch(digits):
    # Same seed (initial weights, data order), no dropout or batch norm: the only difference
    # is how the gradient of 64 samples is computed.
    common = {"training": {"epochs": 2}, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}
    small = Trainer(
        {**common, "training": {"epochs": 2, "batch_size": 16, "accumulate_batches": 4}},
        digits,
        seed=7,
    )
    large = Trainer({**common, "training": {"epochs": 2, "batch_size": 64}}, digits, seed=7)
    for a, b in zip(small.run(), large.run(), strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    for p, q in zip(small.model.parameters(), large.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_gradient_clipping_bounds_the_step(digits):
    # grad_norm is measured before clipping; with a tiny bound, one SGD step moves the
    # weights by at most lr * bound.
    trainer = Trainer(
        {
            "training": {"epochs": 1, "batch_size": 2000, "grad_clip_norm": 1e-3},
            "optimizer": {"name": "sgd", "lr": 1.0},
        },
        digits,
    )
    before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    metrics = trainer.fit_epoch()
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    assert metrics["grad_norm"] > 1e-3
    assert torch.linalg.vector_norm(after - before).item() == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.parametrize(
    ("mode", "values", "patience", "min_delta", "stops_at"),
    [
        ("min", [5, 4, 3, 3.5, 3.2, 3.1, 2], 2, 0.0, 5),  # 3.5 and 3.2 do not beat 3
        ("min", [5, 4, 3.95, 3.92, 3.91], 3, 0.1, 5),  # steps under min_delta do not count
        ("max", [0.1, 0.5, 0.4, 0.6, 0.6, 0.6], 2, 0.0, 6),
        ("max", [0.1, 0.2, 0.3], 1, 0.0, None),
        ("max", [0.1, math.nan, 0.05], 2, 0.0, 3),  # NaN never improves
    ],
)
def test_early_stopping_rule(mode, values, patience, min_delta, stops_at):
    from hpo.trainable.early_stopping import EarlyStopping

    stopper = EarlyStopping(patience, min_delta, mode)
    stopped = [epoch for epoch, value in enumerate(values, 1) if stopper.update(value)]
    assert (stopped[0] if stopped else None) == stops_at


def test_early_stopping_ends_the_trial_as_finished_at_the_right_epoch(digits):
    config = {
        "training": {"epochs": 30},
        "optimizer": {"lr": 1e-2},
        "metric": "val_loss",
        "mode": "min",
    }
    full = list(fit(config, digits))
    losses = [m["val_loss"] for m in full]
    patience = 2
    # The first epoch after which the loss has not improved for `patience` epochs.
    best, bad, expected = math.inf, 0, None
    for epoch, loss in enumerate(losses, 1):
        best, bad = (loss, 0) if loss < best else (best, bad + 1)
        if bad >= patience:
            expected = epoch
            break
    assert expected is not None, "the loss should stop improving within 30 epochs at lr 1e-2"
    stopped = list(fit({**config, "early_stopping": {"patience": patience}}, digits))
    assert len(stopped) == expected
    assert [m["val_loss"] for m in stopped] == losses[:expected]
    assert [m[FINAL_KEY] for m in stopped] == [False] * (expected - 1) + [True]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {
            "model": {"dropout": 0.3, "batch_norm": True},
            "augment": {"noise_std": 0.2, "max_shift": 1},
            "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
            "lr_scheduler": {"name": "plateau", "patience": 0},
            "training": {"epochs": 6, "accumulate_batches": 2, "grad_clip_norm": 1.0},
            "early_stopping": {"patience": 4},
            "metric": "val_accuracy",
            "mode": "max",
        },
    ],
    ids=["plain", "everything-stateful"],
)
def test_resuming_from_a_checkpoint_matches_an_uninterrupted_run(digits, tmp_path, changes):
    config = {"training": {"epochs": 6}, "lr_scheduler": {"name": "onecycle"}, **changes}
    uninterrupted = list(fit(config, digits))

    first = Trainer(config, digits)
    head = [first.fit_epoch() for _ in range(3)]
    save_checkpoint(first.state_dict(), tmp_path)
    # Another process would start afresh: disturb the global generator in between.
    torch.manual_seed(12345)
    tail = list(fit(config, digits, state=load_checkpoint(tmp_path)))

    # What the clock and the process's memory say differs from run to run; nothing else may.
    unmeasured = {"epoch_time_s", "peak_memory_mb", "inference_ms"}
    drop_time = lambda ms: [{k: v for k, v in m.items() if k not in unmeasured} for m in ms]  # noqa: E731
    assert drop_time(head + tail) == drop_time(uninterrupted)


def test_a_checkpoint_of_another_config_is_refused(digits, tmp_path):
    trainer = Trainer({"training": {"epochs": 1}}, digits)
    save_checkpoint(trainer.state_dict(), tmp_path)
    with pytest.raises(ValueError, match="another config"):
        list(
            fit(
                {"training": {"epochs": 1}, "optimizer": {"lr": 0.1}},
                digits,
                state=load_checkpoint(tmp_path),
            )
        )


def test_checkpoint_loads_with_weights_only(digits, tmp_path):
    trainer = Trainer(
        {"training": {"epochs": 1}, "lr_scheduler": {"name": "warmup_cosine"}}, digits
    )
    trainer.fit_epoch()
    path = save_checkpoint(trainer.state_dict(), tmp_path)
    state = torch.load(path, weights_only=True)  # raises if anything but plain data is inside
    assert state["epoch"] == 1 and set(state) >= {
        "model",
        "optimizer",
        "lr_scheduler",
        "scaler",
        "early_stopping",
    }
    with pytest.raises(FileNotFoundError, match="no trainer state"):
        load_checkpoint(tmp_path / "missing")


def test_test_split_is_held_out_and_evaluated_on_demand(digits):
    trainer = Trainer({"data": {"test_fraction": 0.2}, "training": {"epochs": 3}}, digits)
    sizes = len(trainer.train_dataset.x), len(trainer.val_dataset.x), len(trainer.test_dataset.x)
    assert sum(sizes) == len(digits.x)
    assert sizes[1] == pytest.approx(0.2 * len(digits.x), abs=2)
    assert sizes[2] == pytest.approx(0.2 * len(digits.x), abs=2)
    list(trainer.run())
    metrics = trainer.test()
    assert set(metrics) == {
        "test_loss",
        "test_accuracy",
        "test_f1",
        "test_precision",
        "test_recall",
    }
    assert metrics["test_accuracy"] > 0.8
    with pytest.raises(ValueError, match="test_fraction"):
        Trainer({"training": {"epochs": 1}}, digits).test()


def test_precision_and_device_choice_on_cpu(digits):
    from hpo.trainable.loop import pick_device, pick_precision

    auto = TrainableConfig().training
    if not torch.cuda.is_available():
        assert pick_device(auto).type == "cpu"
        assert pick_precision(auto, torch.device("cpu")) is None
        with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
            pick_precision(
                TrainableConfig(training={"precision": "fp16"}).training, torch.device("cpu")
            )
    # bf16 autocast runs on the CPU and still learns.
    last = list(
        fit(
            {
                "training": {"epochs": 3, "precision": "bf16", "device": "cpu"},
                "optimizer": {"lr": 3e-3},
            },
            digits,
        )
    )[-1]
    assert last["val_accuracy"] > 0.8
