"""The store suite: one set of tests, run on SQLite and on a real PostgreSQL server alike."""

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

import hpo
from hpo.errors import UsageError
from hpo.store import SCHEMA_VERSION, Store, TrialStatus, now, resolve_url
from hpo.store._schema import trials

SPEC = {
    "metric": "val_loss",
    "mode": "min",
    "searcher": {"name": "random"},
    "scheduler": {"name": "fifo"},
    "seed": 0,
    "num_trials": 2,
}


@pytest.fixture
def store(store_url: str) -> Store:
    store = Store(store_url)
    yield store
    store.close()


def trial_row(exp_id: int, trial_id: str, number: int, **columns) -> dict:
    return {
        "experiment_id": exp_id,
        "trial_id": trial_id,
        "number": number,
        "status": TrialStatus.RUNNING.value,
        "params": {"optimizer.lr": 0.1},
        "config": {"optimizer": {"lr": 0.1}},
        **columns,
    }


def result_row(exp_id: int, trial_id: str, iteration: int, **metrics) -> dict:
    return {
        "experiment_id": exp_id,
        "trial_id": trial_id,
        "iteration": iteration,
        "metrics": metrics,
        "reported_at": now(),
    }


def test_schema_version_and_indexes(store: Store):
    with store.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
        )
    inspector = sa.inspect(store.engine)
    indexed = {
        tuple(ix["column_names"])
        for table in ("trials", "results")
        for ix in inspector.get_indexes(table)
    }
    assert {
        ("experiment_id",),
        ("trial_pk",),
        ("experiment_id", "best_value"),
        ("experiment_id", "number"),
    } <= indexed


def test_a_taken_name_gets_a_suffix(store: Store):
    assert store.create_experiment("exp", SPEC, storage_path="/x")[1] == "exp"
    assert store.create_experiment("exp", SPEC, storage_path="/x")[1] == "exp-2"
    assert store.create_experiment("exp", SPEC, storage_path="/x")[1] == "exp-3"
    assert store.experiment_names() == ["exp", "exp-2", "exp-3"]


def test_an_experiment_records_where_it_came_from(store: Store):
    store.create_experiment("exp", SPEC, storage_path="/x")
    row = store.experiment("exp")
    assert row["host"] and row["status"] == "RUNNING"
    assert {"python", "hpo", "torch", "ray", "optuna"} <= set(row["versions"])
    assert row["git_commit"] is None or len(row["git_commit"]) == 40


def test_trials_are_upserted_and_results_added(store: Store):
    exp_id, _ = store.create_experiment("exp", SPEC, storage_path="/x")
    store.write([trial_row(exp_id, "t1", 0)], [result_row(exp_id, "t1", 1, val_loss=0.5)])
    store.write(
        [
            {
                "experiment_id": exp_id,
                "trial_id": "t1",
                "status": "COMPLETED",
                "value": 0.5,
                "final_metrics": {"val_loss": 0.5},
            }
        ],
        [result_row(exp_id, "t1", 2, val_loss=0.4)],
    )
    [trial] = store.trial_rows(exp_id)
    assert (trial["status"], trial["params"], trial["value"]) == (
        "COMPLETED",
        {"optimizer.lr": 0.1},
        0.5,
    )
    assert trial["final_metrics"] == {"val_loss": 0.5}
    assert [r["iteration"] for r in store.result_rows(exp_id)] == [1, 2]
    with pytest.raises(sa.exc.IntegrityError):  # one row per trial and iteration
        store.write([], [result_row(exp_id, "t1", 2, val_loss=0.4)])


def test_test_metrics_are_kept_with_the_trial_and_the_experiment(store: Store):
    exp_id, _ = store.create_experiment("exp", SPEC, storage_path="/x")
    store.write([trial_row(exp_id, "t1", 0)], [])
    store.set_test_metrics(exp_id, "t1", {"test_accuracy": 0.99})
    assert store.trial_rows(exp_id)[0]["test_metrics"] == {"test_accuracy": 0.99}
    assert store.experiment("exp")["test_metrics"] == {"test_accuracy": 0.99}


def test_an_evaluation_is_kept_per_trial_and_split_and_replaced_when_run_again(store: Store):
    exp_id, _ = store.create_experiment("exp", SPEC, storage_path="/x")
    store.write([trial_row(exp_id, "t1", 0), trial_row(exp_id, "t2", 1)], [])
    report = {"kind": "classification", "classes": ["a", "b"], "confusion": [[3, 1], [0, 4]]}
    store.set_evaluation(exp_id, "t2", "test", {"test_accuracy": 0.875}, report)
    store.set_evaluation(exp_id, "t1", "val", {"val_accuracy": 0.5}, report)
    store.set_evaluation(exp_id, "t2", "val", {"val_accuracy": 0.7}, report)
    store.set_evaluation(exp_id, "t2", "val", {"val_accuracy": 0.75}, report)  # again: replaced
    rows = store.evaluation_rows(exp_id)
    assert [(r["number"], r["split"], r["metrics"]) for r in rows] == [
        (0, "val", {"val_accuracy": 0.5}),
        (1, "test", {"test_accuracy": 0.875}),
        (1, "val", {"val_accuracy": 0.75}),
    ]
    assert rows[1]["report"] == report and rows[1]["trial_id"] == "t2"
    with pytest.raises(UsageError, match="no trial 'nope'"):
        store.set_evaluation(exp_id, "nope", "val", {}, report)


def test_a_version_2_store_gains_the_evaluations_table(tmp_path):
    """The store of the release before (schema 2, tests/fixtures) opens, and takes evaluations."""
    import shutil
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "store-b256439.db"
    copy = tmp_path / "old.db"
    shutil.copy(fixture, copy)
    with sa.create_engine(f"sqlite:///{copy}").connect() as conn:
        assert conn.execute(sa.text("SELECT version FROM schema_version")).scalar() == 2
    store = Store(f"sqlite:///{copy}", create=False)
    exp_id = store.experiment("before-registry")["id"]
    trial = store.trial_rows(exp_id)[0]
    store.set_evaluation(exp_id, trial["trial_id"], "val", {"val_loss": 1.0}, {"kind": "x"})
    assert [r["metrics"] for r in store.evaluation_rows(exp_id)] == [{"val_loss": 1.0}]
    store.close()


@pytest.mark.parametrize(
    ("ended", "finished"),
    [
        ([], 0),
        ([("ERROR", 3), ("INTERRUPTED", 0)], 0),  # a trial stopped before its first report
        ([("ERROR", 1), ("COMPLETED", 5)], 1),
        ([("PRUNED", 2)], 1),
        ([("INTERRUPTED", 2), ("ERROR", 0)], 1),  # cut short by the time budget: it counts
    ],
)
def test_the_outcome_counts_trials_whose_results_count(store: Store, ended, finished):
    exp_id, _ = store.create_experiment("exp", SPEC, storage_path="/x")
    other, _ = store.create_experiment("other", SPEC, storage_path="/x")
    store.write([trial_row(other, "o", 0, status="COMPLETED", iterations=3)], [])
    store.write(
        [
            trial_row(exp_id, f"t{n}", n, status=status, iterations=iterations)
            for n, (status, iterations) in enumerate(ended)
        ],
        [],
    )
    assert store.outcome(exp_id).finished == finished


def test_the_outcome_names_the_first_error_by_number(store: Store):
    exp_id, _ = store.create_experiment("exp", SPEC, storage_path="/x")
    assert store.outcome(exp_id).first_error is None
    store.write(
        [
            trial_row(exp_id, "a", 2, status="ERROR", error="KeyError: 'b'\nmore"),
            trial_row(exp_id, "b", 0, status="COMPLETED", iterations=1),
            trial_row(exp_id, "c", 1, status="ERROR", error="ValueError: x\nTraceback"),
        ],
        [],
    )
    assert store.outcome(exp_id).first_error == "ValueError: x"


@pytest.mark.parametrize(
    ("mode", "best", "top"),
    [
        ("min", ["d", "a", "b"], {"number": 6, "best_value": 0.1}),
        ("max", ["c", "a", "b"], {"number": 5, "best_value": 0.9}),
    ],
)
def test_the_best_trials_by_best_value_first_number_among_equals(store: Store, mode, best, top):
    exp_id, _ = store.create_experiment("exp", SPEC, storage_path="/x")
    other, _ = store.create_experiment("other", SPEC, storage_path="/x")
    store.write([trial_row(other, "o", 0, status="COMPLETED", best_value=-9.0)], [])
    store.write(
        [
            trial_row(exp_id, "a", 3, status="PRUNED", best_value=0.5),
            trial_row(exp_id, "b", 4, status="COMPLETED", best_value=0.5),
            trial_row(exp_id, "c", 5, status="RUNNING", best_value=0.9),
            trial_row(exp_id, "d", 6, status="INTERRUPTED", best_value=0.1),
            trial_row(exp_id, "e", 0, status="ERROR", best_value=0.0),  # errored: never best
            trial_row(exp_id, "f", 1, status="COMPLETED"),  # no value yet
        ],
        [],
    )
    assert [row["trial_id"] for row in store.best_trials(exp_id, mode, 3)] == best
    assert store.best_trials(exp_id, mode, columns=["number", "best_value"]) == [top]


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


def test_names_never_reach_sql(store: Store):
    """Metric and parameter names are data: a hostile one is stored and read as text."""
    evil = 'x"; DROP TABLE trials;--'
    exp_id, _ = store.create_experiment("exp", SPEC, storage_path="/x")
    store.write(
        [trial_row(exp_id, "t1", 0, params={evil: 1}, final_metrics={evil: 2.0})],
        [result_row(exp_id, "t1", 1, **{evil: 2.0})],
    )
    table = hpo.load("exp", store).trials()
    assert table[f"params.{evil}"].tolist() == [1]
    assert hpo.load("exp", store).history()[evil].tolist() == [2.0]
    with pytest.raises(UsageError):
        store.experiment(evil)
    assert sa.inspect(store.engine).has_table("trials")


def test_reading_while_a_run_writes(store: Store):
    """`hpo show` in a loop while the driver writes: neither fails, nothing is lost."""
    exp_id, _ = store.create_experiment("exp", SPEC, storage_path="/x")
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for i in range(40):
                store.write(
                    [trial_row(exp_id, f"t{i}", i)],
                    [result_row(exp_id, f"t{i}", e, val_loss=1.0 / e) for e in range(1, 26)],
                )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            done.set()

    reader = Store(store.url)  # a second connection pool, as a second process would have
    writer = threading.Thread(target=write)
    writer.start()
    reads = 0
    while not done.is_set() or reads == 0:
        hpo.load("exp", reader).trials()
        reads += 1
    writer.join()
    assert not errors
    assert len(store.trial_rows(exp_id)) == 40
    assert len(store.result_rows(exp_id)) == 40 * 25
    assert reads > 0
    reader.close()


# The schema as version 1 created it, to check the upgrade path.
V1_DDL = [
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version VALUES (1)",
    """CREATE TABLE experiments (id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL UNIQUE,
       status VARCHAR(20) NOT NULL, spec JSON NOT NULL, metric VARCHAR(200) NOT NULL,
       mode VARCHAR(3) NOT NULL, searcher VARCHAR(50) NOT NULL, scheduler VARCHAR(50) NOT NULL,
       seed INTEGER NOT NULL, num_samples INTEGER NOT NULL, host VARCHAR(255), storage_path TEXT,
       started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP)""",
    """CREATE TABLE trials (id INTEGER PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments (id),
       trial_id VARCHAR(100) NOT NULL, number INTEGER NOT NULL, status VARCHAR(20) NOT NULL,
       params JSON NOT NULL, config JSON NOT NULL, started_at TIMESTAMP, ended_at TIMESTAMP,
       iterations INTEGER NOT NULL, value FLOAT, best_value FLOAT, last_result JSON, error TEXT,
       UNIQUE (experiment_id, trial_id))""",
    "CREATE INDEX ix_trials_experiment_id ON trials (experiment_id)",
    "CREATE INDEX ix_trials_experiment_best ON trials (experiment_id, best_value)",
    """CREATE TABLE results (id INTEGER PRIMARY KEY, trial_pk INTEGER NOT NULL REFERENCES trials (id),
       iteration INTEGER NOT NULL, metrics JSON NOT NULL, reported_at TIMESTAMP NOT NULL,
       UNIQUE (trial_pk, iteration))""",
    "CREATE INDEX ix_results_trial_pk ON results (trial_pk)",
    """INSERT INTO experiments VALUES (1, 'old', 'COMPLETED', '{}', 'val_loss', 'min', 'random', 'fifo',
       0, 1, 'h', '/x', '2026-01-01 00:00:00', NULL)""",
    """INSERT INTO trials VALUES (1, 1, 't1', 0, 'COMPLETED', '{"a": 1}', '{}', NULL, NULL, 3, 0.5, 0.4,
       '{"val_loss": 0.5}', NULL)""",
]


def test_a_version_1_store_is_upgraded_in_place(store_url: str):
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        for statement in V1_DDL:
            if engine.dialect.name == "postgresql":  # what SQLAlchemy's v1 tables were there
                statement = statement.replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY")
            conn.execute(sa.text(statement))
    engine.dispose()
    store = Store(store_url)
    with store.engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
        )
        row = conn.execute(sa.select(trials).where(trials.c.trial_id == "t1")).mappings().one()
    assert (row["params"], row["best_value"], row["final_metrics"]) == ({"a": 1}, 0.4, None)
    assert (row["peak_memory_mb"], row["micro_batches"]) == (None, None)  # v3: not measured
    assert hpo.load("old", store).trials()["params.a"].tolist() == [1]
    store.close()


def test_a_newer_store_is_refused(store_url: str):
    Store(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = 99"))
    engine.dispose()
    with pytest.raises(UsageError, match="schema version 99, newer than this hpo understands"):
        Store(store_url)


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'a' / 'hpo.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() == 30000


def test_resolve_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORE", raising=False)
    assert resolve_url() == f"sqlite:///{tmp_path}/hpo-results/hpo.db"
    monkeypatch.setenv("HPO_STORE", "env.db")
    assert resolve_url() == f"sqlite:///{tmp_path}/env.db"
    assert resolve_url(None, "spec.db") == f"sqlite:///{tmp_path}/spec.db"
    assert resolve_url("sqlite:///cli.db", "spec.db") == "sqlite:///cli.db"


def test_unreachable_stores_are_clear_errors(tmp_path: Path):
    with pytest.raises(UsageError, match="cannot open the results store"):
        Store("nosuchdb://x")
    with pytest.raises(UsageError, match="cannot open the results store"):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none")
