"""pandas tables from a store filled by hand (no Ray): final and best values, ranking, listing."""

from pathlib import Path

import pytest

import hpo
from hpo.errors import UsageError
from hpo.store import Store, TrialStatus, now
from hpo.types import metric_mode

SPEC = {
    "metric": "val_accuracy",
    "mode": "max",
    "searcher": {"name": "random"},
    "scheduler": {"name": "asha"},
    "seed": 0,
    "num_trials": 3,
}


@pytest.fixture
def store(store_url: str) -> Store:
    store = Store(store_url)
    exp_id, _ = store.create_experiment("exp", SPEC, storage_path="/x")
    curves = {  # trial id -> (status, val_accuracy per epoch)
        "a": (TrialStatus.COMPLETED, [0.5, 0.9, 0.8]),
        "b": (TrialStatus.PRUNED, [0.6]),
        "c": (TrialStatus.ERROR, []),
    }
    for number, (trial_id, (status, accuracies)) in enumerate(curves.items()):
        key = {"experiment_id": exp_id, "trial_id": trial_id}
        row = {
            **key,
            "number": number,
            "status": status.value,
            "params": {"optimizer.lr": 0.1 * (number + 1)},
            "config": {"n": number},
            "started_at": now(),
            "ended_at": now(),
            "iterations": len(accuracies),
        }
        if accuracies:  # the columns StoreRecorder keeps up to date for such a trial
            row["final_metrics"] = {"val_accuracy": accuracies[-1], "val_loss": 1 - accuracies[-1]}
            row["best_metrics"] = {"val_accuracy": max(accuracies), "val_loss": 1 - max(accuracies)}
            row["best_value"] = max(accuracies)
        if status is TrialStatus.ERROR:
            row.update(
                error_type="ValueError", error="ValueError: boom", error_traceback="Traceback ..."
            )
        results = [
            {
                **key,
                "iteration": i + 1,
                "metrics": {"val_accuracy": acc, "val_loss": 1 - acc},
                "reported_at": now(),
            }
            for i, acc in enumerate(accuracies)
        ]
        store.write([row], results)
    return store


def test_trials_have_params_final_and_best(store: Store):
    trials = hpo.load("exp", store).trials().set_index("trial_id")
    assert list(trials.index) == ["a", "b", "c"]
    assert trials.loc["a", "params.optimizer.lr"] == pytest.approx(0.1)
    assert trials.loc["a", "final.val_accuracy"] == pytest.approx(0.8)
    assert trials.loc["a", "best.val_accuracy"] == pytest.approx(0.9)
    assert trials.loc["a", "best.val_loss"] == pytest.approx(0.1)  # loss: lower is better
    assert trials.loc["b", "status"] == "PRUNED"
    assert trials.loc["c", "error"].startswith("ValueError: boom")
    assert trials["duration_s"].notna().all()


def test_best_ranks_by_the_spec_metric_and_skips_errors(store: Store):
    experiment = hpo.load("exp", store)
    assert list(experiment.best(5)["trial_id"]) == ["a", "b"]
    assert experiment.config("a") == {"n": 0} == experiment.config(0)
    with pytest.raises(UsageError, match="no trial 'zz'"):
        experiment.config("zz")


def test_history_has_one_row_per_epoch(store: Store):
    history = hpo.load("exp", store).history()
    assert len(history) == 4
    assert {"trial_id", "iteration", "val_accuracy", "val_loss"} <= set(history.columns)


def test_experiments_lists_counts_and_best(store: Store):
    table = hpo.experiments(store)
    row = table.iloc[0]
    assert (row["name"], row["trials"], row["completed"], row["pruned"], row["errored"]) == (
        "exp",
        3,
        1,
        1,
        1,
    )


def test_an_experiment_without_trials(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    store.create_experiment("empty", SPEC, storage_path=str(tmp_path))
    experiment = hpo.load("empty", store)
    assert experiment.trials().empty and experiment.best().empty and experiment.history().empty


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("val_loss", "min"),
        ("train_mae", "min"),
        ("val_accuracy", "max"),
        ("f1", "max"),
        ("epoch_time_s", None),
    ],
)
def test_metric_mode_by_name(name, expected):
    assert metric_mode(name, "other", "max") == expected
    assert metric_mode("other", "other", "min") == "min"


def test_the_best_spec_holds_only_the_options_of_the_kinds_its_trial_drew(store_url: str):
    # As a store written before trials' configs were leaned holds it: the spec's own kinds'
    # options (cnn's, step's) in a trial that drew mlp and none.
    store = Store(store_url)
    exp_id, _ = store.create_experiment("kinds", SPEC, storage_path="/x")
    config = {
        "model": {"name": "mlp", "hidden_size": 8, "channels": 16, "kernel_size": 3},
        "lr_scheduler": {"name": "none", "step_size": 3, "gamma": 0.1},
        "optimizer": {"name": "adam", "lr": 0.01, "momentum": 0.9},
        "seed": 0,
    }
    row = {
        "experiment_id": exp_id,
        "trial_id": "a",
        "number": 0,
        "status": TrialStatus.COMPLETED.value,
        "params": {"model.name": "mlp"},
        "config": config,
        "best_metrics": {"val_accuracy": 0.9},
        "best_value": 0.9,
    }
    store.write([row], [])
    best = hpo.load("kinds", store).best_spec()
    assert best["model"] == {"name": "mlp", "hidden_size": 8}
    assert best["lr_scheduler"] == {"name": "none"}
    assert best["optimizer"] == {"name": "adam", "lr": 0.01}
