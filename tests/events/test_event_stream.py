"""The trial event stream and its consumers, without Ray: a stand-in for Ray's `Trial` (the
few attributes the stream reads) goes through the stream's hooks as Ray calls them. The real
thing runs in the Ray tests (tests/runner, tests/resuming, test_trackers_ray.py)."""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import TypeAdapter
from rich.console import Console

from hpo.events import (
    BestCheckpoints,
    Consumer,
    EarlierRuns,
    FailFast,
    SearchEnded,
    SearchStarted,
    StepEnded,
    StoreRecorder,
    TensorBoardTracker,
    TrialAdded,
    TrialEnded,
    TrialReported,
    TrialStarted,
    TrialStream,
    progress_view,
)
from hpo.resuming import CONTINUE_KEY, Continuation
from hpo.resuming._plan import ContinuedTrial, FinishedTrial, ResumePlan, TrialStart
from hpo.search._space import Distribution, Space
from hpo.store import Store, TrialStatus
from hpo.trainable.config import FINAL_KEY
from hpo.trainable.memory import OUT_OF_MEMORY, TrialOutOfMemory
from hpo.types import Mode

SPACE = Space(
    {"lr": TypeAdapter(Distribution).validate_python({"type": "float", "low": 0, "high": 1})}
)


class Heard(Consumer):
    """Every event it is given."""

    def __init__(self):
        self.events = []

    def receive(self, event):
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def ray_trial(trial_id: str, lr: float, continuation: Continuation | None = None, **attrs):
    """What the stream reads of Ray's `Trial`."""
    config = {"lr": lr, "seed": 0}
    if continuation is not None:
        config[CONTINUE_KEY] = continuation.to_config()
    stand_in = {"path": None, "checkpoint": None, "pickled_error_file": None, "error_file": None}
    return SimpleNamespace(trial_id=trial_id, config=config, last_result={}, **stand_in | attrs)


def report(stream, trials, trial, step, **metrics):
    result = {"training_iteration": step, "time_this_iter_s": 0.1, "done": False, **metrics}
    trial.last_result = result
    stream.on_trial_result(0, trials, trial, result)


def stream_of(*consumers, earlier=None, mode="max"):
    return TrialStream(list(consumers), SPACE, "acc", mode, earlier)


def test_new_trials_are_numbered_after_the_earlier_runs_and_a_continued_one_keeps_its_own():
    heard = Heard()
    earlier = EarlierRuns(
        taken=5,
        continued={"stored-3": TrialStart(last_step=2, best={"acc": 0.9}, started=True)},
    )
    stream = stream_of(heard, earlier=earlier)
    continued = ray_trial("ray-a", 0.1, Continuation("stored-3", 3, "/ckpt", 2, 2))
    new = ray_trial("ray-b", 0.2)
    trials = [continued, new]
    stream.setup()
    stream.on_step_begin(0, trials)
    added = [e.trial for e in heard.of(TrialAdded)]
    assert [(t.trial_id, t.number, t.continued) for t in added] == [
        ("stored-3", 3, True),
        ("ray-b", 5, False),
    ]
    assert added[0].config == {"lr": 0.1, "seed": 0} and added[0].params == {"lr": 0.1}
    assert added[0].status is TrialStatus.PENDING

    for trial in trials:
        stream.on_trial_start(0, trials, trial)
    # The continued trial ran before: it keeps its start time.
    assert [e.first for e in heard.of(TrialStarted)] == [False, True]

    report(stream, trials, continued, 2, acc=0.5)  # reported again from its checkpoint
    report(stream, trials, continued, 3, acc=0.7)
    reported = heard.of(TrialReported)
    assert [(e.iteration, e.again) for e in reported] == [(2, True), (3, False)]
    # Its best goes on from the store's, not from this run's results.
    assert reported[-1].trial.best == {"acc": 0.9} and reported[-1].trial.last == {"acc": 0.7}
    assert reported[-1].trial.iteration == 3 and reported[-1].trial.status is TrialStatus.RUNNING

    # Ray starts a trial again after a failure: not its first start, and its steps come again.
    stream.on_trial_start(0, trials, new)
    assert heard.of(TrialStarted)[-1].first is False
    report(stream, trials, new, 1, acc=0.3)
    report(stream, trials, new, 1, acc=0.4)
    assert [e.again for e in heard.of(TrialReported)[-2:]] == [False, True]
    assert heard.of(TrialReported)[-1].trial.best == {"acc": 0.4}
    assert heard.events[0] == SearchStarted(succeeded_before=False)


def test_pruned_is_told_apart_from_completed_by_the_scheduler_or_the_trainable():
    heard = Heard()
    stream = stream_of(heard)
    trials = [ray_trial(f"t{i}", 0.1 * i) for i in range(4)]
    for trial in trials:
        stream.on_trial_start(0, trials, trial)
    stream.pruned("t1")  # what the scheduler says of a user's function's trial
    trials[2].last_result = {FINAL_KEY: False}  # hpo's trainable says it itself
    trials[3].last_result = {FINAL_KEY: True}
    for trial in trials:
        stream.on_trial_complete(0, trials, trial)
    assert [e.status for e in heard.of(TrialEnded)] == [
        TrialStatus.COMPLETED,
        TrialStatus.PRUNED,
        TrialStatus.PRUNED,
        TrialStatus.COMPLETED,
    ]


def test_an_error_is_read_once_into_the_event(tmp_path: Path):
    from ray import cloudpickle

    heard = Heard()
    stream = stream_of(heard)
    pickled = tmp_path / "error.pkl"
    try:
        raise KeyError("model.hidden")
    except KeyError as exc:
        pickled.write_bytes(cloudpickle.dumps(exc))
    unknown = tmp_path / "error.txt"
    unknown.write_text("Traceback ...\nSomething: went wrong")
    trials = [
        ray_trial("a", 0.1),
        ray_trial("b", 0.2),
    ]
    trials[0].pickled_error_file = str(pickled)
    trials[1].error_file = str(unknown)
    for trial in trials:  # the second fails before it starts
        stream.on_trial_error(0, trials, trial)
    first, second = heard.of(TrialEnded)
    assert first.status is TrialStatus.ERROR
    assert (first.error.type, first.error.message) == ("KeyError", "KeyError: 'model.hidden'")
    assert (second.error.type, second.error.message) == ("UnknownError", "Something: went wrong")
    assert second.trial.number == 1


def test_a_failing_tracker_stops_being_fed_and_fails_no_trial(caplog):
    class Broken(Heard):
        best_effort = True

        def receive(self, event):
            super().receive(event)
            raise RuntimeError("the tracking server is down")

    class Essential(Broken):
        best_effort = False

    broken, heard = Broken(), Heard()
    stream = stream_of(broken, heard)
    trials = [ray_trial("a", 0.1)]
    with caplog.at_level(logging.ERROR):
        stream.on_step_begin(0, trials)
        stream.on_trial_start(0, trials, trials[0])
    assert len(broken.events) == 1 and len(heard.events) == 2
    assert "Broken stopped tracking" in caplog.text
    with pytest.raises(RuntimeError):  # the store's recorder, say: its failure is the trial's
        stream_of(Essential()).on_step_begin(0, trials)


def test_the_starting_state_is_built_from_the_resume_plan():
    continued = ContinuedTrial(
        params={"lr": 0.1},
        continuation=Continuation("s1", 1, None, 0, 4),
        values={1: 0.5},
        best={"acc": 0.5},
        recovered=[],
        started=True,
    )
    failed = FinishedTrial("s0", "ERROR", {"lr": 0.2}, None, {})
    plan = ResumePlan(finished=[failed], continued=[continued], taken=2, new=1)
    earlier = EarlierRuns.of(plan.run_start())
    assert earlier == EarlierRuns(2, {"s1": TrialStart(4, {"acc": 0.5}, True)}, False)
    pruned = FinishedTrial("s2", "PRUNED", {"lr": 0.3}, 0.1, {1: 0.1})
    assert EarlierRuns.of(ResumePlan([failed, pruned], [], 3, 0).run_start()).succeeded
    assert EarlierRuns.of(None) == EarlierRuns()


def test_the_recorder_writes_what_the_stream_says(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'hpo.db'}")
    spec = {"metric": "acc", "mode": "max", "searcher": {"name": "random"}}
    spec |= {"scheduler": {"name": "fifo"}, "seed": 0, "num_trials": 2}
    experiment_id, _ = store.create_experiment("rec", spec, storage_path=str(tmp_path))
    stream = stream_of(StoreRecorder(store, experiment_id, "acc"))
    trials = [ray_trial("a", 0.1), ray_trial("b", 0.2)]
    stream.setup()
    stream.on_step_begin(0, trials)
    stream.on_trial_start(0, trials, trials[0])
    for step, acc in [(1, 0.5), (2, 0.7), (3, 0.6)]:
        report(stream, trials, trials[0], step, acc=acc, loss=1 - acc)
    # Retried from its checkpoint of step 2: step 3 comes again, with a new value.
    stream.on_trial_start(0, trials, trials[0])
    report(stream, trials, trials[0], 3, acc=0.8, loss=0.2)
    stream.pruned("a")
    stream.on_trial_complete(0, trials, trials[0])
    stream.on_experiment_end(trials)

    rows = {r["trial_id"]: r for r in store.trial_rows(experiment_id)}
    assert rows["b"]["status"] == "PENDING" and rows["b"]["number"] == 1
    a = rows["a"]
    assert (a["number"], a["status"], a["iterations"]) == (0, "PRUNED", 3)
    assert (a["value"], a["best_value"]) == (0.8, 0.8)
    assert a["best_metrics"] == {"acc": 0.8, "loss": pytest.approx(0.2)}
    assert a["params"] == {"lr": 0.1} and a["started_at"] is not None
    results = [(r["iteration"], r["metrics"]["acc"]) for r in store.result_rows(experiment_id)]
    assert results == [(1, 0.5), (2, 0.7), (3, 0.8)]
    store.close()


def test_fail_fast_trips_on_one_repeated_error_unless_something_worked(tmp_path: Path):
    from ray import cloudpickle

    def errors(fail_fast, *ends, succeeded_before=False):
        stream = stream_of(fail_fast, earlier=EarlierRuns(succeeded=succeeded_before))
        stream.setup()
        trials = [ray_trial(str(i), 0.1) for i in range(len(ends))]
        for trial, end in zip(trials, ends, strict=True):
            if end is None:
                stream.on_trial_complete(0, trials, trial)
                continue
            trial.pickled_error_file = str(tmp_path / f"{trial.trial_id}.pkl")
            Path(trial.pickled_error_file).write_bytes(cloudpickle.dumps(end))
            stream.on_trial_error(0, trials, trial)
        return fail_fast

    bug = KeyError("x")
    assert errors(FailFast(2), bug, bug).stop_all()
    assert "KeyError: 'x'" in errors(FailFast(2), bug, bug).reason()
    assert not errors(FailFast(2), bug, ValueError("y")).stop_all()
    assert not errors(FailFast(2), None, bug, bug).stop_all()
    assert not errors(FailFast(2), bug, bug, succeeded_before=True).stop_all()
    assert not errors(FailFast(0), bug, bug).stop_all()
    nan = FloatingPointError("nan loss")  # what a bad configuration does
    assert not errors(FailFast(2), nan, nan).stop_all()
    oom = TrialOutOfMemory("out of memory", batch_size=64, micro_batches=1, peak_memory_mb=9.0)
    assert not errors(FailFast(2), oom, oom).stop_all()  # so is too large a batch
    cuda = MemoryError()  # a user's function running out of memory, in its own words
    assert not errors(FailFast(2), cuda, cuda).stop_all()


def test_running_out_of_memory_is_stored_as_out_of_memory_with_its_peak(tmp_path: Path):
    from ray import cloudpickle

    store = Store(f"sqlite:///{tmp_path / 'hpo.db'}")
    spec = {"metric": "acc", "mode": "max", "searcher": {"name": "random"}}
    spec |= {"scheduler": {"name": "fifo"}, "seed": 0, "num_trials": 3}
    experiment_id, _ = store.create_experiment("oom", spec, storage_path=str(tmp_path))
    heard = Heard()
    stream = stream_of(heard, StoreRecorder(store, experiment_id, "acc"))
    trials = [ray_trial(name, 0.1) for name in "abc"]
    stream.setup()
    ours = TrialOutOfMemory(
        "out of memory in epoch 1, step 3 with batch size 64, peak memory 812.5 MB on cuda (...)",
        batch_size=64,
        micro_batches=1,
        peak_memory_mb=812.5,
    )
    theirs = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")  # older torch
    for trial, error in zip(trials[:2], (ours, theirs), strict=True):
        trial.pickled_error_file = str(tmp_path / f"{trial.trial_id}.pkl")
        Path(trial.pickled_error_file).write_bytes(cloudpickle.dumps(error))
        stream.on_trial_start(0, trials, trial)
        stream.on_trial_error(0, trials, trial)
    stream.on_trial_start(0, trials, trials[2])
    report(stream, trials, trials[2], 1, acc=0.5, peak_memory_mb=40.0, micro_batches=2)
    stream.on_trial_complete(0, trials, trials[2])
    stream.on_experiment_end(trials)

    first, second = (event.error for event in heard.of(TrialEnded)[:2])
    assert (first.type, first.message, first.peak_memory_mb) == (OUT_OF_MEMORY, str(ours), 812.5)
    assert (second.type, second.message) == (
        OUT_OF_MEMORY,
        "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
    )
    rows = {r["trial_id"]: r for r in store.trial_rows(experiment_id)}
    assert (rows["a"]["error_type"], rows["a"]["peak_memory_mb"], rows["a"]["micro_batches"]) == (
        OUT_OF_MEMORY,
        812.5,
        1,
    )
    assert rows["b"]["peak_memory_mb"] is None  # nothing measured it
    assert (rows["c"]["peak_memory_mb"], rows["c"]["micro_batches"]) == (40.0, 2)
    store.close()


def test_the_view_shows_each_trials_number_and_the_best_so_far():
    out = io.StringIO()
    console = Console(file=out, width=200)
    view = progress_view(console, live=False, metric="acc", mode=Mode.MAX, total=2)
    earlier = EarlierRuns(1, {"s0": TrialStart(1, {"acc": 0.95}, True)})
    stream = stream_of(view, earlier=earlier)
    trials = [ray_trial("ray-x", 0.1, Continuation("s0", 0, None, 0, 1)), ray_trial("b", 0.2)]
    for trial in trials:
        stream.on_trial_start(0, trials, trial)
    report(stream, trials, trials[1], 1, acc=0.5)
    report(stream, trials, trials[0], 2, acc=0.6)
    for trial in trials:
        stream.on_trial_complete(0, trials, trial)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trial   0 completed   2 epochs  acc 0.6000  best 0.9500 (trial 0)")
    assert lines[1].startswith("trial   1 completed   1 epochs  acc 0.5000  best 0.9500 (trial 0)")
    assert view.counts == {"running": 0, "completed": 2, "pruned": 0, "failed": 0}
    pickle.dumps(view)  # Ray pickles its callbacks


def test_tensorboards_best_of_a_continued_trial_goes_on_from_the_stored_one(tmp_path: Path):
    """The unit version of test_trackers_ray.py: the best/ written at the end is the stream's."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    earlier = EarlierRuns(1, {"s0": TrialStart(2, {"acc": 0.9}, True)})
    tracker = TensorBoardTracker(tmp_path, SPACE, ["acc"])
    stream = stream_of(tracker, earlier=earlier)
    trials = [ray_trial("ray-x", 0.1, Continuation("s0", 0, None, 0, 2))]
    stream.setup()
    stream.on_trial_start(0, trials, trials[0])
    report(stream, trials, trials[0], 3, acc=0.7)
    stream.on_trial_complete(0, trials, trials[0])
    stream.on_experiment_end(trials)
    events = EventAccumulator(str(tmp_path / "trial_00000"))
    events.Reload()
    assert [(s.step, s.value) for s in events.Scalars("acc")] == [(3, pytest.approx(0.7))]
    assert [(s.step, s.value) for s in events.Scalars("best/acc")] == [(3, pytest.approx(0.9))]
    assert [(s.step, s.value) for s in events.Scalars("final/acc")] == [(3, pytest.approx(0.7))]


def test_the_checkpoint_keeper_keeps_the_best_by_the_streams_best(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'hpo.db'}")
    spec = {"metric": "acc", "mode": "max", "searcher": {"name": "random"}}
    spec |= {"scheduler": {"name": "fifo"}, "seed": 0, "num_trials": 3}
    experiment_id, _ = store.create_experiment("keep", spec, storage_path=str(tmp_path))
    keeper = BestCheckpoints(store, experiment_id, "acc", "max", keep_trials=1)
    stream = stream_of(StoreRecorder(store, experiment_id, "acc"), keeper)
    trials = []
    for name in ("a", "b", "c"):
        (tmp_path / name / "checkpoint_000001").mkdir(parents=True)
        trials.append(ray_trial(name, 0.1, path=str(tmp_path / name)))
    for trial, acc in zip(trials, [0.6, 0.8, 0.7], strict=True):
        stream.on_trial_start(0, trials, trial)
        report(stream, trials, trial, 1, acc=acc)
        report(stream, trials, trial, 2, acc=0.1)  # its best is not its last
        trial.checkpoint = SimpleNamespace(
            path=str(tmp_path / trial.trial_id / "checkpoint_000001")
        )
        stream.on_trial_complete(0, trials, trial)
    kept = [t for t in ("a", "b", "c") if any((tmp_path / t).glob("checkpoint_*"))]
    assert kept == ["b"]
    rows = {r["trial_id"]: r["checkpoint_path"] for r in store.trial_rows(experiment_id)}
    assert rows["a"] is None and rows["c"] is None and rows["b"].endswith("checkpoint_000001")
    store.close()


def test_the_events_are_frozen():
    stream = stream_of(heard := Heard())
    trials = [ray_trial("a", 0.1)]
    stream.on_step_begin(0, trials)
    with pytest.raises(AttributeError):
        heard.events[0].trial.number = 7  # type: ignore[misc]
    assert StepEnded() == StepEnded() and SearchEnded() == SearchEnded()


def test_asha_tells_the_stream_which_trials_it_stops_before_their_end():
    from hpo.search._schedulers import AshaScheduler

    heard = Heard()
    stream = stream_of(heard)
    scheduler = AshaScheduler(name="asha", grace_period=1, reduction_factor=2).build(
        epochs=2, on_prune=stream.pruned
    )
    scheduler.set_search_properties("acc", "max")
    trials = [ray_trial(name, 0.1) for name in ("good", "bad", "last")]
    decisions = {}
    for trial, acc in zip(trials, [0.9, 0.1, 0.8], strict=True):
        scheduler.on_trial_add(None, trial)
        stream.on_trial_start(0, trials, trial)
        result = {"training_iteration": 1, "acc": acc}
        decisions[trial.trial_id] = scheduler.on_trial_result(None, trial, result)
    # The last rung's stop is the trial's end, not a prune.
    decisions["last"] = scheduler.on_trial_result(
        None, trials[2], {"training_iteration": 2, "acc": 0.05}
    )
    assert decisions == {"good": "CONTINUE", "bad": "STOP", "last": "STOP"}
    for trial in trials:
        stream.on_trial_complete(0, trials, trial)
    ended = {e.trial.trial_id: e.status for e in heard.of(TrialEnded)}
    assert ended == {
        "good": TrialStatus.COMPLETED,
        "bad": TrialStatus.PRUNED,
        "last": TrialStatus.COMPLETED,
    }


# A spec of one kind that searches the kind: a trial drawing another kind must not be stored
# with the options of the spec's own.
KINDS_SEARCHED = {
    "name": "kinds",
    "metric": "val_accuracy",
    "model": {"name": "cnn", "channels": 16},
    "lr_scheduler": {"name": "step", "step_size": 3},
    "space": {
        "model.name": {"type": "categorical", "choices": ["mlp", "cnn"]},
        "lr_scheduler.name": {"type": "categorical", "choices": ["none", "step"]},
    },
}


def test_a_trial_is_stored_with_the_options_of_the_kinds_it_drew_only(tmp_path: Path):
    from hpo.spec import load_spec

    spec = load_spec(KINDS_SEARCHED)
    store = Store(f"sqlite:///{tmp_path / 'hpo.db'}")
    experiment_id, _ = store.create_experiment(
        "kinds", {**spec.model_dump(mode="json"), "num_trials": 1}, storage_path=str(tmp_path)
    )
    base = spec.base_config()
    drawn = {"model": {"name": "mlp"}, "lr_scheduler": {"name": "none"}}
    config = {**base, **{k: {**base[k], **v} for k, v in drawn.items()}}  # as Ray merges them
    trial = ray_trial("a", 0.1)
    trial.config = config
    stream = TrialStream(
        [StoreRecorder(store, experiment_id, spec.metric)],
        spec.search_space(),
        spec.metric,
        spec.mode,
        lean=True,
    )
    stream.setup()
    stream.on_step_begin(0, [trial])
    stream.on_experiment_end([trial])

    stored = store.trial_config(experiment_id, "a")
    assert stored["lr_scheduler"] == {"name": "none"}
    assert not {"channels", "num_blocks", "kernel_size"} & set(stored["model"])
    assert stored["model"]["name"] == "mlp" and "hidden_size" in stored["model"]
    assert store.trial_rows(experiment_id)[0]["params"] == {
        "model.name": "mlp",
        "lr_scheduler.name": "none",
    }
    store.close()


def test_the_recorder_writes_results_in_the_back_and_all_by_the_trials_end(tmp_path: Path):
    import hpo.events._recorder as recorder_module

    store = Store(f"sqlite:///{tmp_path / 'hpo.db'}")
    spec = {"metric": "acc", "mode": "max", "searcher": {"name": "random"}}
    spec |= {"scheduler": {"name": "fifo"}, "seed": 0, "num_trials": 1}
    experiment_id, _ = store.create_experiment("back", spec, storage_path=str(tmp_path))
    recorder = StoreRecorder(store, experiment_id, "acc")
    stream = stream_of(recorder)
    trials = [ray_trial("a", 0.1)]
    stream.setup()
    stream.on_trial_start(0, trials, trials[0])
    flush_every = recorder_module.FLUSH_EVERY_S
    recorder_module.FLUSH_EVERY_S = 0.0  # every step's results go to the writer thread
    try:
        for step in range(1, 51):
            report(stream, trials, trials[0], step, acc=step / 100)
            stream.on_step_end(0, trials)
    finally:
        recorder_module.FLUSH_EVERY_S = flush_every
    assert recorder._writer is not None  # the writes went to the thread
    pickle.dumps(recorder)  # Ray pickles its callbacks; the thread stays behind
    stream.on_trial_complete(0, trials, trials[0])
    # The trial's end waits for the writer: everything is in the store when it returns.
    assert len(store.result_rows(experiment_id)) == 50
    assert store.trial_rows(experiment_id)[0]["iterations"] == 50
    stream.close()
    assert recorder._writer is None
    store.close()


def test_a_store_the_writer_thread_cannot_write_fails_the_run(tmp_path: Path):
    import sqlalchemy as sa

    import hpo.events._recorder as recorder_module

    store = Store(f"sqlite:///{tmp_path / 'hpo.db'}")
    spec = {"metric": "acc", "mode": "max", "searcher": {"name": "random"}}
    spec |= {"scheduler": {"name": "fifo"}, "seed": 0, "num_trials": 1}
    experiment_id, _ = store.create_experiment("broken", spec, storage_path=str(tmp_path))
    stream = stream_of(StoreRecorder(store, experiment_id, "acc"))
    trials = [ray_trial("a", 0.1)]
    stream.on_trial_start(0, trials, trials[0])
    with store.engine.begin() as conn:  # the store loses its results table under the run
        conn.exec_driver_sql("DROP TABLE results")
    flush_every = recorder_module.FLUSH_EVERY_S
    recorder_module.FLUSH_EVERY_S = 0.0
    try:
        report(stream, trials, trials[0], 1, acc=0.5)
        stream.on_step_end(0, trials)  # written in the back: no error here yet
        with pytest.raises(sa.exc.OperationalError, match="results"):
            stream.on_trial_complete(0, trials, trials[0])
    finally:
        recorder_module.FLUSH_EVERY_S = flush_every
    stream.close()
    store.close()
