"""The store on its own: schema, unique names, upserts and SQLite's settings."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from hpo.errors import UsageError
from hpo.store import SCHEMA_VERSION, Store, TrialStatus, now, resolve_url

SPEC = {
    "metric": "val_loss",
    "mode": "min",
    "searcher": {"name": "random"},
    "scheduler": {"name": "fifo"},
    "seed": 0,
    "num_trials": 2,
}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'sub' / 'hpo.db'}")


def test_schema_and_sqlite_settings(store: Store):
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() == 30000
        assert (
            conn.execute(sa.text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
        )
    index_columns = {
        tuple(ix["column_names"]) for ix in sa.inspect(store.engine).get_indexes("results")
    }
    assert ("trial_pk",) in index_columns


def test_a_taken_name_gets_a_suffix(store: Store):
    assert store.create_experiment("exp", SPEC, storage_path="/x")[1] == "exp"
    assert store.create_experiment("exp", SPEC, storage_path="/x")[1] == "exp-2"
    assert store.create_experiment("exp", SPEC, storage_path="/x")[1] == "exp-3"
    assert store.experiment_names() == ["exp", "exp-2", "exp-3"]


def test_trials_are_upserted_and_results_added(store: Store):
    exp_id, _ = store.create_experiment("exp", SPEC, storage_path="/x")
    key = {"experiment_id": exp_id, "trial_id": "t1"}
    start = {
        **key,
        "number": 0,
        "status": TrialStatus.RUNNING.value,
        "params": {"a": 1},
        "config": {"a": 1},
    }
    result = {**key, "iteration": 1, "metrics": {"val_loss": 0.5}, "reported_at": now()}
    store.write([start], [result])
    store.write(
        [{**key, "status": TrialStatus.COMPLETED.value, "value": 0.5}], [{**result, "iteration": 2}]
    )
    [trial] = store.trial_rows(exp_id)
    assert trial["status"] == "COMPLETED" and trial["params"] == {"a": 1} and trial["value"] == 0.5
    assert [r["iteration"] for r in store.result_rows(exp_id)] == [1, 2]
    with pytest.raises(sa.exc.IntegrityError):  # one row per trial and iteration
        store.write([], [result])


def test_unknown_experiment_lists_the_known_ones(store: Store):
    store.create_experiment("exp", SPEC, storage_path="/x")
    with pytest.raises(
        UsageError, match=r"no experiment named 'nope'.*experiments in this store: exp"
    ):
        store.experiment("nope")


def test_store_is_picklable(store: Store):
    import pickle

    copy = pickle.loads(pickle.dumps(store))
    assert copy.url == store.url and copy.experiment_names() == []


def test_resolve_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORE", raising=False)
    assert resolve_url() == f"sqlite:///{tmp_path}/hpo-results/hpo.db"
    monkeypatch.setenv("HPO_STORE", "env.db")
    assert resolve_url() == f"sqlite:///{tmp_path}/env.db"
    assert resolve_url(None, "spec.db") == f"sqlite:///{tmp_path}/spec.db"
    assert resolve_url("sqlite:///cli.db", "spec.db") == "sqlite:///cli.db"


def test_unreachable_store_is_a_clear_error(tmp_path: Path):
    with pytest.raises(UsageError, match="cannot open the results store"):
        Store("nosuchdb://x")
