"""Several processes open one store at once (creating it), take the same experiment name and
write trials and results while others do: every name is unique, no write is lost, and none
fails with "database is locked". Real processes on a real SQLite file (and PostgreSQL)."""

import multiprocessing
import time

from hpo.store import Store, TrialStatus, now

WRITERS, TRIALS, EPOCHS = 6, 4, 10

SPEC = {
    "metric": "loss",
    "mode": "min",
    "searcher": {"name": "random"},
    "scheduler": {"name": "fifo"},
    "seed": 0,
    "num_trials": TRIALS,
}


def write_one_experiment(url: str, start_at: float) -> str:
    """What a run's driver does to the store, started by every writer at the same moment."""
    time.sleep(max(0.0, start_at - time.time()))
    store = Store(url)
    experiment_id, name = store.create_experiment("same", SPEC, storage_path="/x")
    for epoch in range(1, EPOCHS + 1):
        trial_rows = [
            {
                "experiment_id": experiment_id,
                "trial_id": f"t{number}",
                "number": number,
                "status": TrialStatus.RUNNING.value,
                "params": {"x": number},
                "config": {"x": number},
                "iterations": epoch,
            }
            for number in range(TRIALS)
        ]
        result_rows = [
            {
                "experiment_id": experiment_id,
                "trial_id": f"t{number}",
                "iteration": epoch,
                "metrics": {"loss": 1 / epoch},
                "reported_at": now(),
            }
            for number in range(TRIALS)
        ]
        store._pks.clear()  # look the trials up again each time: a read, then a write
        store.write(trial_rows, result_rows)
    store.close()
    return name


def test_writers_in_several_processes_lose_nothing(store_url: str):
    start_at = time.time() + 3  # after every process has started and imported hpo
    with multiprocessing.get_context("spawn").Pool(WRITERS) as pool:
        names = pool.starmap(write_one_experiment, [(store_url, start_at)] * WRITERS)

    assert sorted(names) == sorted(["same", *(f"same-{n}" for n in range(2, WRITERS + 1))])
    store = Store(store_url)
    for name in names:
        experiment = store.experiment(name)
        assert len(store.trial_rows(experiment["id"])) == TRIALS
        assert len(store.result_rows(experiment["id"])) == TRIALS * EPOCHS
    store.close()
