"""Real searches on the session's Ray: every searcher, the store against what Ray reported."""

import re
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from ray import tune

import hpo
from hpo.errors import RunFailed
from hpo.spec._spec import load_spec
from hpo.store import TrialStatus
from tests.conftest import tiny_spec

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session", "workdir")]


class ReportedByRay(tune.Callback):
    """What Ray itself saw: each trial's results and how it ended."""

    def __init__(self):
        self.results = defaultdict(list)
        self.ended = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results[trial.trial_id].append(
            (result["training_iteration"], result["val_loss"], result["val_accuracy"])
        )

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.ended[trial.trial_id] = "complete"

    def on_trial_error(self, iteration, trials, trial, **info):
        self.ended[trial.trial_id] = "error"


SEARCHES = {
    "grid": tiny_spec(
        searcher="grid",
        budget={},
        space={
            "optimizer.lr": {"type": "categorical", "choices": [1e-3, 1e-2]},
            "model.hidden_size": {"type": "int", "low": 8, "high": 16, "step": 8},
        },
    ),
    "random": tiny_spec(
        searcher="random",
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
        training={"epochs": 4, "batch_size": 128},
        budget={"num_samples": 5},
    ),
    "optuna": tiny_spec(
        searcher={"name": "optuna", "n_startup_trials": 2},
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
        training={"epochs": 4, "batch_size": 128},
        budget={"num_samples": 5},
    ),
}


@pytest.mark.parametrize("searcher", list(SEARCHES))
def test_search_runs_and_the_store_matches_ray(searcher: str):
    spec = load_spec(SEARCHES[searcher], {"name": f"search-{searcher}"})
    ray_saw = ReportedByRay()
    experiment = hpo.run(spec, callbacks=[ray_saw])

    trials = experiment.trials()
    assert len(trials) == spec.num_trials() == len(ray_saw.ended)
    assert set(trials["status"]) <= {TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value}
    assert {c for c in trials.columns if c.startswith("params.")} == {
        f"params.{k}" for k in spec.space
    }
    epochs = spec.training.epochs
    for row in trials.itertuples():
        expected = (
            TrialStatus.COMPLETED.value if row.iterations == epochs else TrialStatus.PRUNED.value
        )
        assert row.status == expected

    history = experiment.history()
    for trial_id, reported in ray_saw.results.items():
        stored = history[history["trial_id"] == trial_id]
        assert (
            list(zip(stored["iteration"], stored["val_loss"], stored["val_accuracy"], strict=True))
            == reported
        )

    if searcher == "grid":
        seen = {
            (r["params.optimizer.lr"], r["params.model.hidden_size"]) for _, r in trials.iterrows()
        }
        assert seen == {(1e-3, 8), (1e-3, 16), (1e-2, 8), (1e-2, 16)}
    else:
        # The dry run's preview is what the searcher really proposed first.
        first = spec.searcher.preview(spec.search_space(), seed=spec.seed, n=1)[0]
        row = trials[trials["number"] == 0].iloc[0]
        assert {k: row[f"params.{k}"] for k in spec.space} == pytest.approx(first)
    if searcher != "grid":
        assert (trials["status"] == TrialStatus.PRUNED.value).any()

    again = hpo.load(experiment.name)
    assert again.status == "COMPLETED"
    assert len(again.trials()) == len(trials)
    best = again.best(2)
    assert (
        list(best[f"best.{spec.metric}"]) == sorted(trials[f"best.{spec.metric}"], reverse=True)[:2]
    )
    assert (
        again.config(int(best.iloc[0]["number"]))["optimizer"]["lr"]
        == best.iloc[0]["params.optimizer.lr"]
    )


def test_a_failing_trial_is_recorded_and_the_run_goes_on():
    spec = tiny_spec(
        name="some-fail",
        searcher="grid",
        budget={},
        optimizer={"name": "sgd"},
        space={"optimizer.lr": {"type": "categorical", "choices": [1e-2, 1e12]}},
    )
    experiment = hpo.run(spec)
    trials = experiment.trials().set_index("params.optimizer.lr")
    assert trials.loc[1e-2, "status"] == TrialStatus.COMPLETED.value
    assert trials.loc[1e12, "status"] == TrialStatus.ERROR.value
    # The step where its gradient turned NaN or infinite (a layer's, or the norm's overflow).
    assert re.match(
        r"FloatingPointError: the gradient (of \S+ )?(norm )?became \S+ in epoch 1, step \d+",
        trials.loc[1e12, "error"],
    )
    assert experiment.status == "COMPLETED"


def test_a_run_where_every_trial_fails_raises():
    spec = tiny_spec(
        name="all-fail", optimizer={"name": "sgd", "lr": 1e12}, space={}, budget={"num_samples": 2}
    )
    with pytest.raises(RunFailed, match="FloatingPointError"):
        hpo.run(spec)
    experiment = hpo.load("all-fail")
    assert experiment.status == "FAILED"
    assert set(experiment.trials()["status"]) == {TrialStatus.ERROR.value}


def test_a_second_run_under_a_taken_name_gets_its_own_experiment():
    spec = tiny_spec(name="twice", budget={"num_samples": 1})
    first = hpo.run(spec)
    second = hpo.run(spec)
    assert (first.name, second.name) == ("twice", "twice-2")
    assert len(hpo.load("twice").trials()) == 1
    assert len(hpo.load("twice-2").trials()) == 1
    assert list(hpo.experiments()["name"]) == ["twice", "twice-2"]


def test_overrides_as_keywords():
    experiment = hpo.run(tiny_spec(), name="kw", budget__num_samples=2, store="kw.db")
    assert experiment.name == "kw"
    assert len(hpo.load("kw", store="kw.db").trials()) == 2


CONDITIONAL_SPACE = {
    "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]},
    "optimizer.momentum": {
        "type": "categorical",
        "choices": [0.5, 0.9],
        "when": {"optimizer.name": "sgd"},
    },
    "optimizer.lr": {"type": "categorical", "choices": [0.01, 0.05]},
}


@pytest.mark.parametrize("searcher", ["grid", "random", "optuna"])
def test_a_conditional_space_stores_only_active_parameters(searcher: str):
    spec = tiny_spec(
        name=f"cond-{searcher}",
        searcher=searcher,
        space=CONDITIONAL_SPACE,
        budget={} if searcher == "grid" else {"num_samples": 6},
        training={"epochs": 2, "batch_size": 128},
    )
    experiment = hpo.run(spec)
    rows = experiment.store.trial_rows(experiment.row["id"])
    if searcher == "grid":
        assert len(rows) == 6  # sgd x 2 momenta x 2 rates, adam x 2 rates
    for row in rows:
        params, optimizer = row["params"], row["config"]["optimizer"]
        sgd = params["optimizer.name"] == "sgd"
        expected = {"optimizer.name", "optimizer.lr"} | ({"optimizer.momentum"} if sgd else set())
        assert set(params) == expected
        # an inactive parameter keeps the base config's value
        assert optimizer["momentum"] == (params["optimizer.momentum"] if sgd else 0.0)
    trials = experiment.trials()
    assert (
        trials["params.optimizer.momentum"].isna().tolist()
        == (trials["params.optimizer.name"] != "sgd").tolist()
    )


def test_tensorboard_gets_one_run_per_trial_and_an_hparams_table(workdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    spec = tiny_spec(name="tb", budget={"num_samples": 2})
    experiment = hpo.run(spec)
    logdir = workdir / "hpo-results" / "tb" / "tensorboard"

    def plugin_data(path) -> dict:
        events = EventAccumulator(str(path))
        events.Reload()
        contents = events.PluginTagToContent("hparams")
        return {
            tag: plugin_data_pb2.HParamsPluginData.FromString(data)
            for tag, data in contents.items()
        }, events

    root, _ = plugin_data(logdir)
    hparams = {info.name: info for info in root["_hparams_/experiment"].experiment.hparam_infos}
    assert set(hparams) == {"optimizer.lr", "model.hidden_size"}
    assert hparams["optimizer.lr"].domain_interval.max_value == pytest.approx(3e-2)
    runs = sorted(p for p in logdir.iterdir() if p.is_dir())
    assert [p.name for p in runs] == ["trial_00000", "trial_00001"]
    for number, run in enumerate(runs):
        data, events = plugin_data(run)
        params = experiment.trials().set_index("number").loc[number]
        start = data["_hparams_/session_start_info"].session_start_info
        assert start.hparams["model.hidden_size"].number_value == params["params.model.hidden_size"]
        assert "_hparams_/session_end_info" in data
        assert len(events.Scalars("val_accuracy")) == spec["training"]["epochs"]
        assert events.Scalars("best/val_accuracy")[-1].value == pytest.approx(
            params["best.val_accuracy"]
        )


@pytest.mark.parametrize("every", [0, 2])
def test_the_best_trial_is_evaluated_on_the_test_split(every: int):
    """From its checkpoint where it has one, else trained again to the same epoch."""
    spec = tiny_spec(
        name=f"test-split-{every}",
        data={"name": "digits", "val_fraction": 0.2, "test_fraction": 0.2},
        checkpoint={"every": every},
        budget={"num_samples": 2},
    )
    experiment = hpo.run(spec)
    test = experiment.row["test_metrics"]
    assert {"test_loss", "test_accuracy"} <= set(test) and 0.5 < test["test_accuracy"] <= 1.0
    best = experiment.best(1).iloc[0]
    assert best["test.test_accuracy"] == test["test_accuracy"]
    assert (best["checkpoint_path"] is not None) == (every > 0)


def test_mlflow_gets_one_run_per_trial(workdir):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    spec = tiny_spec(
        name="mlf",
        budget={"num_samples": 2},
        tracking={"tensorboard": False, "mlflow": {"tracking_uri": uri}},
    )
    experiment = hpo.run(spec)
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("mlf").experiment_id])
    assert len(runs) == 2
    trials = experiment.trials().set_index("trial_id")
    for run in runs:
        trial = trials.loc[run.data.tags["hpo.trial_id"]]
        assert float(run.data.params["optimizer.lr"]) == pytest.approx(trial["params.optimizer.lr"])
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(1, trial["iterations"] + 1))
        assert run.info.status == "FINISHED"


def test_only_the_best_trials_keep_their_checkpoints(workdir):
    spec = tiny_spec(
        name="keep", checkpoint={"every": 1, "keep_trials": 2}, budget={"num_samples": 4}
    )
    experiment = hpo.run(spec)
    trials = experiment.trials()
    kept = trials.dropna(subset=["checkpoint_path"])
    assert len(kept) == 2
    assert set(kept["trial_id"]) == set(experiment.best(2)["trial_id"])
    folders = [
        p for p in (workdir / "hpo-results" / "keep").iterdir() if p.name.startswith("trial_")
    ]
    with_checkpoints = [p for p in folders if any(p.glob("checkpoint_*"))]
    assert len(folders) == 4 and len(with_checkpoints) == 2
    for path in kept["checkpoint_path"]:
        assert Path(path).is_dir()


def test_the_same_spec_gives_the_same_trials_and_metrics(workdir):
    """One seed: the searcher's proposals and each trial's training repeat exactly (CPU)."""
    spec = tiny_spec(budget={"num_samples": 3})
    first = hpo.run(spec, name="again-1").trials().set_index("number")
    second = hpo.run(spec, name="again-2").trials().set_index("number")
    columns = [
        c
        for c in first.columns
        if c.startswith(("params.", "final.val_", "best.val_", "final.train_loss"))
    ]
    pd.testing.assert_frame_equal(first[columns], second[columns])


@pytest.mark.parametrize("searcher", ["random", "optuna"])
def test_max_concurrent_is_honoured_by_every_searcher(searcher: str):
    spec = tiny_spec(
        name=f"one-at-a-time-{searcher}",
        searcher=searcher,
        budget={"num_samples": 3, "max_concurrent": 1},
    )
    trials = hpo.run(spec).trials().sort_values("started_at")
    starts, ends = list(trials["started_at"]), list(trials["ended_at"])
    assert all(ends[i] <= starts[i + 1] for i in range(len(starts) - 1))  # never two at once
