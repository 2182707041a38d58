"""Resume: the plan from the store, the searcher and scheduler rebuilt from it, and whole runs
stopped by Ctrl-C, SIGTERM and SIGKILL, then resumed with `hpo resume`."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from hpo.resuming._plan import latest_checkpoints
from tests.conftest import tiny_spec
from tests.runner.test_failing_trials import X, study_trials

SPACE = {
    "optimizer.lr": {"type": "float", "low": 5e-4, "high": 5e-2, "log": True},
    "model.hidden_size": {"type": "int", "low": 8, "high": 32},
}


# --- whole runs through the CLI, stopped and resumed --------------------------------------------


def _spec(name: str, num_samples: int) -> dict:
    return {
        "name": name,
        "metric": "val_accuracy",
        "mode": "max",
        "seed": 0,
        "model": {"hidden_size": 16, "num_layers": 1},
        "optimizer": {"name": "adam", "lr": 3e-3},
        "training": {"epochs": 8, "batch_size": 16},
        "checkpoint": {"every": 1, "keep_trials": num_samples},
        "space": SPACE,
        "searcher": {"name": "optuna", "n_startup_trials": 4},
        "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
        "budget": {"num_samples": num_samples},
        "tracking": {"tensorboard": False},
    }


class Driver:
    """`hpo` in a process of its own session, as a user's terminal runs it."""

    def __init__(self, workdir: Path, *args: str):
        env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        self.log = open(workdir / f"driver-{time.monotonic_ns()}.log", "w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hpo", *args, "-v"],
            cwd=workdir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        """Return as soon as the driver has printed `text` (or has ended)."""
        deadline = time.monotonic() + timeout
        while text not in self.output() and self.process.poll() is None:
            assert time.monotonic() < deadline, f"no {text!r} in {timeout} s:\n{self.output()}"
            time.sleep(0.005)

    def wait(self, timeout: float = 240) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL to the driver and the Ray processes it started (its session)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


class StoreReader:
    def __init__(self, workdir: Path, name: str):
        self.engine = sa.create_engine(f"sqlite:///{workdir / 'hpo-results' / 'hpo.db'}")
        self.name = name

    def query(self, sql: str) -> list:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(sa.text(sql), {"name": self.name}))
        except sa.exc.OperationalError:  # the store does not exist yet
            return []

    def result_count(self) -> int:
        rows = self.query(
            "SELECT count(*) FROM results r JOIN trials t ON r.trial_pk = t.id "
            "JOIN experiments e ON t.experiment_id = e.id WHERE e.name = :name"
        )
        return rows[0][0] if rows else 0

    def wait_for_results(self, driver: Driver, count: int, timeout: float = 180) -> bool:
        """Whether `count` results are stored before the driver ends by itself."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.result_count() >= count:
                return True
            if driver.process.poll() is not None:
                return False
            time.sleep(0.2)
        raise AssertionError(f"no {count} results in {timeout} s:\n{driver.output()}")

    def trials(self) -> list:
        return self.query(
            "SELECT t.number, t.trial_id, t.status, t.iterations FROM trials t "
            "JOIN experiments e ON t.experiment_id = e.id WHERE e.name = :name ORDER BY t.number"
        )

    def iterations(self) -> dict[str, list[int]]:
        rows = self.query(
            "SELECT t.trial_id, r.iteration FROM results r JOIN trials t ON r.trial_pk = t.id "
            "JOIN experiments e ON t.experiment_id = e.id WHERE e.name = :name "
            "ORDER BY t.trial_id, r.iteration"
        )
        found: dict[str, list[int]] = {}
        for trial_id, iteration in rows:
            found.setdefault(trial_id, []).append(iteration)
        return found

    def status(self) -> str:
        return self.query("SELECT status FROM experiments WHERE name = :name")[0][0]


def _assert_accounted_for(reader: StoreReader, num_samples: int) -> None:
    """Exactly `num_samples` trials, each finished, with one result per epoch it ran and its
    last epoch where it stopped: all 8 epochs, or a rung of ASHA (1, 2, 4)."""
    trials = reader.trials()
    assert [t.number for t in trials] == list(range(num_samples))
    assert len({t.trial_id for t in trials}) == num_samples
    assert {t.status for t in trials} <= {"COMPLETED", "PRUNED"}
    iterations = reader.iterations()
    for trial in trials:
        assert iterations[trial.trial_id] == list(range(1, trial.iterations + 1))
        assert (
            trial.iterations == 8 if trial.status == "COMPLETED" else trial.iterations in (1, 2, 4)
        )
    assert reader.status() == "COMPLETED"
    # Also a trial that was still waiting when a run stopped has its start and end.
    untimed = reader.query(
        "SELECT t.number FROM trials t JOIN experiments e ON t.experiment_id = e.id "
        "WHERE e.name = :name AND (t.started_at IS NULL OR t.ended_at IS NULL)"
    )
    assert untimed == []


@pytest.mark.ray
@pytest.mark.slow
def test_ctrl_c_and_sigterm_stop_gracefully_a_second_ctrl_c_at_once_and_resume_goes_on(workdir):
    (workdir / "spec.yaml").write_text(yaml.safe_dump(_spec("signals", 6)))
    reader = StoreReader(workdir, "signals")

    first = Driver(workdir, "run", "spec.yaml")
    assert reader.wait_for_results(first, 2)
    first.process.send_signal(signal.SIGINT)
    assert first.wait() == 130, first.output()
    assert "hpo resume signals" in first.output()
    assert reader.status() == "INTERRUPTED"
    assert {t.status for t in reader.trials()} <= {"COMPLETED", "PRUNED", "INTERRUPTED"}

    # A preempted machine: SIGTERM is a first Ctrl-C.
    second = Driver(workdir, "resume", "signals")
    assert reader.wait_for_results(second, reader.result_count() + 1)
    assert "new study created" not in second.output()  # Optuna's log stays quiet on resume
    second.process.send_signal(signal.SIGTERM)
    assert second.wait() == 130, second.output()
    assert reader.status() == "INTERRUPTED"

    # Two Ctrl-C: the second exits at once, with the store marked. The second is sent as soon
    # as the first is handled; a graceful stop that wins the race anyway (it takes well under a
    # second on a quiet machine) leaves a resumable run, and the next resume tries again.
    stopped_at_once = False
    for _ in range(3):
        third = Driver(workdir, "resume", "signals")
        if not reader.wait_for_results(third, reader.result_count() + 1):
            break  # it finished first
        third.process.send_signal(signal.SIGINT)
        third.wait_for_output("Stopping: running trials are saved")
        third.process.send_signal(signal.SIGINT)
        assert third.wait(timeout=30) == 130, third.output()
        assert reader.status() == "INTERRUPTED"
        if "Stopping at once" in third.output():
            stopped_at_once = True
            break
    assert stopped_at_once, "every graceful stop ended before its second Ctrl-C"

    last = Driver(workdir, "resume", "signals")
    assert last.wait() == 0, last.output()
    _assert_accounted_for(reader, 6)


@pytest.mark.ray
@pytest.mark.slow
def test_chaos_a_driver_killed_three_times_at_random_moments_loses_and_repeats_nothing(workdir):
    """20 trials with ASHA; the driver (and the Ray it started) is killed with SIGKILL three
    times, each after a random number of new results, and resumed each time."""
    # Enough trials that three kills, each a few results into a resumed run, come well
    # before the end even when Ray starts fast.
    num_samples = 20
    (workdir / "spec.yaml").write_text(yaml.safe_dump(_spec("chaos", num_samples)))
    reader = StoreReader(workdir, "chaos")
    rng = random.Random(7)
    started = time.monotonic()
    kills = 0
    driver = Driver(workdir, "run", "spec.yaml")
    resumes: list[Driver] = []
    for _ in range(3):
        if not reader.wait_for_results(driver, reader.result_count() + rng.randint(1, 3)):
            break  # it finished first: nothing left to kill
        time.sleep(rng.uniform(0, 0.5))
        # Ended, or only shutting Ray down after recording the end (with its summary shown).
        if driver.process.poll() is not None or reader.status() != "RUNNING":
            break
        driver.kill()
        kills += 1
        assert reader.status() == "RUNNING"  # as a killed driver leaves it
        driver = Driver(workdir, "resume", "chaos")
        resumes.append(driver)
    assert driver.wait() == 0, driver.output()
    assert kills == 3, "the search ended before three kills; give it more to do"
    _assert_accounted_for(reader, num_samples)
    # Checkpoints every epoch: a completed trial's last one is at its last epoch; a pruned
    # trial stopped at its rung, and its worker may have saved further epochs before the
    # stop reached it (also in a run that was killed before it judged them).
    checkpoints = latest_checkpoints(workdir / "hpo-results" / "chaos")
    for trial in reader.trials():
        last = max(checkpoints[trial.trial_id]).iteration
        assert last == trial.iterations if trial.status == "COMPLETED" else last >= trial.iterations
    recovered = sum(
        int(m.group(1))
        for d in resumes
        for m in re.finditer(r"(\d+) results taken from checkpoints", d.output())
    )
    print(
        f"chaos: {kills} kills survived in {time.monotonic() - started:.0f} s; "
        f"{recovered} results taken from checkpoints"
    )


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_resume_errored_runs_failed_trials_again_from_their_checkpoint(workdir, capsys):
    """A user's function that breaks in one trial; fixed, `resume --errored` continues that
    trial from its checkpoint and leaves the other alone."""
    import tempfile

    import hpo

    broken = workdir / "broken"
    broken.touch()

    def train(config: dict) -> None:
        start = 0
        checkpoint = hpo.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                start = int((Path(directory) / "epoch").read_text())
        for epoch in range(start + 1, 4):
            if epoch == 2 and config["x"] > 0.5 and broken.exists():
                raise RuntimeError("broken for now")
            directory = tempfile.mkdtemp()
            (Path(directory) / "epoch").write_text(str(epoch))
            hpo.report({"score": config["x"] + epoch, "started_at": start}, checkpoint=directory)

    experiment = hpo.tune(
        train,
        space={"x": {"type": "grid", "values": [0.2, 0.8]}},
        metric="score",
        mode="max",
        searcher="grid",
        name="flaky",
    )
    before = experiment.trials().set_index("number")
    assert list(before["status"]) == ["COMPLETED", "ERROR"]

    broken.unlink()
    capsys.readouterr()
    again = hpo.resume("flaky", errored=True, function=train)
    # The progress lines number the continued trial as the store does (Ray counts from 0 again).
    assert "trial   1 completed" in capsys.readouterr().out
    after = again.trials().set_index("number")
    assert list(after["status"]) == ["COMPLETED", "COMPLETED"]
    assert after.loc[1, "error"] is None or after.loc[1, "error"] != after.loc[1, "error"]
    assert after.loc[0, "ended_at"] == before.loc[0, "ended_at"]  # not run again
    history = again.history()
    resumed = history[history["trial_id"] == after.loc[1, "trial_id"]]
    assert list(resumed["iteration"]) == [1, 2, 3]
    # Epochs 2 and 3 ran in the resumed run, from the checkpoint of epoch 1.
    assert list(resumed["started_at"]) == [0, 1, 1]


def as_a_killed_driver_leaves_it(workdir: Path, name: str, stored: dict[str, int]) -> None:
    """The store of a driver killed a second after its last write: each trial's results up to
    `stored[trial_id]` and the trial RUNNING (its checkpoints go on further)."""
    with StoreReader(workdir, name).engine.begin() as conn:
        for trial_id, last in stored.items():
            conn.execute(
                sa.text(
                    "DELETE FROM results WHERE iteration > :last AND trial_pk = "
                    "(SELECT id FROM trials WHERE trial_id = :trial_id)"
                ),
                {"last": last, "trial_id": trial_id},
            )
            conn.execute(
                sa.text("UPDATE trials SET status = 'RUNNING' WHERE trial_id = :trial_id"),
                {"trial_id": trial_id},
            )
        conn.execute(sa.text("UPDATE experiments SET status = 'RUNNING'"))


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_results_a_killed_driver_had_not_written_are_taken_from_checkpoints_not_trained_again(
    workdir,
):
    """The driver writes results in batches; one killed between two writes leaves checkpoints
    newer than the store. A resume takes the missing results from the checkpoints (they hold
    them) and goes on from the latest, also when that is the trial's last epoch."""
    import shutil

    import hpo

    spec = tiny_spec(
        name="lagging",
        training={"epochs": 4, "batch_size": 128},
        checkpoint={"every": 1, "keep": 4, "keep_trials": 2},
        budget={"num_samples": 2},
    )
    before = hpo.run(spec).history().set_index(["trial_id", "iteration"])
    first, second = sorted(before.index.get_level_values(0).unique())
    # `first` stored up to epoch 1 (checkpoints to its end), `second` up to 2 (checkpoints to 3).
    as_a_killed_driver_leaves_it(workdir, "lagging", {first: 1, second: 2})
    for saved in latest_checkpoints(workdir / "hpo-results" / "lagging")[second]:
        if saved.iteration == 4:
            shutil.rmtree(saved.path)

    after = hpo.resume("lagging")
    assert set(after.trials()["status"]) == {"COMPLETED"}
    history = after.history().set_index(["trial_id", "iteration"])
    assert list(history.index) == list(before.index)  # every epoch once, none lost
    # Each epoch's own timing tells whether it was trained again: only `second`'s last was.
    same = history["epoch_time_s"] == before["epoch_time_s"]
    assert same.drop((second, 4)).all() and not same[(second, 4)]
    assert history.loc[first, "val_accuracy"].tolist() == before.loc[first, "val_accuracy"].tolist()


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_keep_trials_counts_the_whole_experiment_across_resumes(workdir):
    """`checkpoint.keep_trials` trials of the experiment keep checkpoints, not so many per run."""
    import hpo

    spec = tiny_spec(
        name="kept", checkpoint={"every": 1, "keep_trials": 2}, budget={"num_samples": 4}
    )
    first = hpo.run(spec).trials()
    dropped = first[first["checkpoint_path"].isna()]["trial_id"]
    assert len(dropped) == 2
    # The two trials that lost their checkpoints run again in a resumed run.
    as_a_killed_driver_leaves_it(workdir, "kept", dict.fromkeys(dropped, 0))

    after = hpo.resume("kept")
    trials = after.trials()
    assert set(trials["status"]) == {"COMPLETED"}
    kept = trials.dropna(subset=["checkpoint_path"])
    assert set(kept["trial_id"]) == set(after.best(2)["trial_id"])
    on_disk = latest_checkpoints(workdir / "hpo-results" / "kept")
    assert set(on_disk) == set(kept["trial_id"])


def counts_to_four(config: dict) -> None:
    """A user's training function with a checkpoint every step; `trained_at` tells runs apart."""
    import tempfile

    import hpo

    start = 0
    checkpoint = hpo.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = int((Path(directory) / "step").read_text())
    for step in range(start + 1, 5):
        directory = tempfile.mkdtemp()
        (Path(directory) / "step").write_text(str(step))
        hpo.report({"score": config["x"] * step, "trained_at": time.time()}, checkpoint=directory)


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_a_users_function_restored_at_its_end_finishes_with_its_value_for_optuna(workdir):
    import hpo

    hpo.tune(
        counts_to_four,
        space=X,
        metric="score",
        mode="max",
        searcher="optuna",
        budget__num_samples=2,
    )
    before = hpo.load("counts_to_four").trials().set_index("trial_id")
    as_a_killed_driver_leaves_it(workdir, "counts_to_four", dict.fromkeys(before.index, 2))

    after = hpo.resume("counts_to_four", function=counts_to_four)
    trials = after.trials().set_index("trial_id")
    assert list(trials["status"]) == ["COMPLETED", "COMPLETED"]
    assert (trials["final.score"] == before["final.score"]).all()
    assert trials["checkpoint_path"].str.endswith("checkpoint_000003").all()  # the one it ended at
    history = after.history()
    assert list(history.groupby("trial_id")["iteration"].apply(list)) == [[1, 2, 3, 4]] * 2
    # Nothing was run again: each step's result is the one from the first run.
    assert (trials["final.trained_at"] == before["final.trained_at"]).all()
    # Optuna was told both trials' final values (a trial that ended with no result in its
    # run would be PRUNED for it).
    study = study_trials(workdir / "hpo-results" / "counts_to_four")
    assert [t.state.name for t in study] == ["COMPLETE", "COMPLETE"]
    assert sorted(t.value for t in study) == sorted(trials["final.score"])


def slow_steps(config: dict) -> None:
    """A training function far longer than the test's time budget."""
    import hpo

    for step in range(1, 300):
        time.sleep(0.1)
        hpo.report({"loss": config["x"] / step})


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session", "workdir")
def test_a_run_cut_by_its_time_budget_leaves_no_trial_running_and_can_go_on():
    import hpo

    experiment = hpo.tune(
        slow_steps,
        space={"x": {"type": "float", "low": 1.0, "high": 2.0}},
        metric="loss",
        budget__num_samples=4,
        budget__time_budget_s=15,  # room for trials to start on a loaded machine
        name="budgeted",
    )
    trials = experiment.trials()
    assert experiment.row["status"] == "COMPLETED"
    assert not trials["status"].isin(["RUNNING", "PENDING"]).any()
    cut = trials[trials["status"] == "INTERRUPTED"]
    assert len(cut) >= 1 and (cut["iterations"] > 0).any()
