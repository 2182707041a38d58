"""The results store: experiments, trials and per-epoch results in one SQL database.

SQLAlchemy Core over one schema (`schema.py`), so that SQLite (the default, a file beside the
run) and any other database with a SQLAlchemy URL hold the same tables. Only the driver
writes; the analysis and the CLI only read. Names of metrics and parameters are data (JSON
keys and bound values), never SQL text.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hpo.errors import MissingStore, UsageError
from hpo.store._schema import (
    SCHEMA_VERSION,
    evaluations,
    experiments,
    metadata,
    results,
    schema_version,
    segments,
    trials,
)
from hpo.types import ExperimentStatus, Mode, TrialStatus

DEFAULT_STORE = "hpo-results/hpo.db"
STORE_ENV = "HPO_STORE"


class Outcome(NamedTuple):
    """How an experiment's trials ended, as far as its own status goes (`Store.outcome`)."""

    finished: int  # trials whose results count
    first_error: str | None  # the first line of the first error, by trial number


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def resolve_url(explicit: str | None = None, spec_store: str | None = None) -> str:
    """The store to use: `--store`, then the spec's `store`, then `$HPO_STORE`, then the default.

    A plain path means an SQLite file; relative paths are taken from the working directory.
    """
    target = explicit or spec_store or os.environ.get(STORE_ENV) or DEFAULT_STORE
    if "://" in target:
        return target
    return f"sqlite:///{Path(target).expanduser().resolve()}"


def _environment() -> dict[str, Any]:
    """Where a run comes from: the git commit of the working directory and the versions used."""
    versions = {"python": sys.version.split()[0]}
    for name, distribution in {
        "hpo": "hpo-orchestra",
        "torch": "torch",
        "ray": "ray",
        "optuna": "optuna",
    }.items():
        try:
            versions[name] = package_metadata.version(distribution)
        except package_metadata.PackageNotFoundError:
            continue
    commit, dirty = None, None
    try:
        git = ["git", "-C", os.getcwd()]
        commit = (
            subprocess.run(
                [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
        if commit:
            status = subprocess.run(
                [*git, "status", "--porcelain"], capture_output=True, text=True, timeout=5
            )
            dirty = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout, or no git: the run is still recorded
    return {"git_commit": commit, "git_dirty": dirty, "versions": versions}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (`hpo show`) work while the driver writes; the busy timeout makes a
    # writer wait for a lock instead of failing with "database is locked". The timeout comes
    # first: switching a new file to WAL takes a lock, maybe while another process holds it.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _one_writer_at_a_time(conn: sa.Connection) -> None:
    """Hold the store's write lock until this transaction ends, so that what it read stays
    true until it writes (a free name, a missing schema) while other processes write too."""
    backend = conn.dialect.name
    if backend == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif backend == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def _schema_version(conn: sa.Connection) -> int | None:
    if not sa.inspect(conn).has_table(schema_version.name):
        return None
    return conn.execute(sa.select(schema_version.c.version)).scalar()


_LOCK_KEY = 0x68706F  # "hpo": the advisory lock of hpo's stores on a PostgreSQL server


class Store:
    """A connection to one results store; creates its schema on first use.

    Args:
        create: create a missing SQLite file (and its folder); commands that only read pass
            False, so that a mistyped path or a run in the wrong folder leaves nothing behind.
    """

    def __init__(self, url: str, *, create: bool = True):
        self.url = url
        self.engine: Engine = self._connect(url, create)
        # (experiment id, trial id) -> trial row id, so that writing a result needs no lookup
        self._pks: dict[tuple[int, str], int] = {}

    @staticmethod
    def _connect(url: str, create: bool) -> Engine:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            path = Path(parsed.database)
            if not create and not path.exists():
                raise MissingStore(
                    f"no results store at {path}: `hpo run SPEC` creates it; --store URL or "
                    "$HPO_STORE names another"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            engine = sa.create_engine(url)
        except ImportError as exc:
            hint = (
                " (for PostgreSQL: pip install 'hpo-orchestra[postgres]')"
                if "psycopg" in str(exc)
                else ""
            )
            raise UsageError(f"cannot open the results store {url!r}: {exc}{hint}") from None
        except sa.exc.ArgumentError as exc:
            raise UsageError(f"cannot open the results store {url!r}: {exc}") from None
        if parsed.get_backend_name() == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        try:
            with engine.begin() as conn:
                # Most opens find the schema current and only read; creating or upgrading it
                # waits for the write lock, since two processes may do it at once.
                if _schema_version(conn) != SCHEMA_VERSION:
                    _one_writer_at_a_time(conn)
                version = _schema_version(conn)
                if version is None:
                    metadata.create_all(conn)
                    conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
                elif version > SCHEMA_VERSION:
                    raise UsageError(
                        f"the store {url} has schema version {version}, newer than this hpo "
                        f"understands ({SCHEMA_VERSION}); upgrade hpo"
                    )
                elif version < SCHEMA_VERSION:
                    # Alembic (about 0.4 s to import) only for a store an older hpo wrote.
                    from hpo.store._migrations import upgrade

                    upgrade(conn, version)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise UsageError(f"cannot open the results store {url!r}: {exc.orig}") from None
        return engine

    def close(self) -> None:
        self.engine.dispose()

    # Ray Tune pickles its callbacks (and so this store) with the experiment's state; the
    # engine is reconnected from the URL.
    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])

    # --- writing (the driver only) -------------------------------------------------------------

    def create_experiment(
        self, name: str, spec: dict[str, Any], *, storage_path: str
    ) -> tuple[int, str]:
        """Add an experiment under `name`, or under `name-2`, `name-3`... if that is taken.

        Returns:
            The experiment's id and the name it was stored under.
        """
        with self.engine.begin() as conn:
            _one_writer_at_a_time(conn)  # another run may be choosing the same name
            taken = set(
                conn.execute(
                    sa.select(experiments.c.name).where(
                        sa.or_(experiments.c.name == name, experiments.c.name.like(f"{name}-%"))
                    )
                ).scalars()
            )
            unique, n = name, 1
            while unique in taken:
                n += 1
                unique = f"{name}-{n}"
            row = conn.execute(
                experiments.insert().values(
                    name=unique,
                    status=ExperimentStatus.RUNNING.value,
                    spec={**spec, "name": unique},
                    metric=spec["metric"],
                    mode=spec["mode"],
                    searcher=spec["searcher"]["name"],
                    scheduler=spec["scheduler"]["name"],
                    seed=spec["seed"],
                    num_samples=spec["num_trials"],
                    host=socket.gethostname(),
                    storage_path=str(storage_path),
                    started_at=now(),
                    **_environment(),
                )
            )
            return row.inserted_primary_key[0], unique

    def set_test_metrics(
        self, experiment_id: int, trial_id: str, metrics: dict[str, float]
    ) -> None:
        """Record the test-split metrics of a trial, and as the experiment's (its best trial's)."""
        with self.engine.begin() as conn:
            conn.execute(
                trials.update()
                .where(trials.c.experiment_id == experiment_id, trials.c.trial_id == trial_id)
                .values(test_metrics=metrics)
            )
            conn.execute(
                experiments.update()
                .where(experiments.c.id == experiment_id)
                .values(test_metrics=metrics)
            )

    def set_evaluation(
        self,
        experiment_id: int,
        trial_id: str,
        split: str,
        metrics: dict[str, float],
        report: dict[str, Any],
    ) -> None:
        """Record a trial's evaluation on `split` (its metrics and report), replacing an
        earlier one of that trial and split.

        Raises:
            UsageError: the experiment has no such trial.
        """
        with self.engine.begin() as conn:
            pk = self._trial_pk(conn, experiment_id, trial_id)
            if pk is None:
                raise UsageError(f"experiment {experiment_id} has no trial {trial_id!r}")
            conn.execute(
                evaluations.delete().where(
                    evaluations.c.trial_pk == pk, evaluations.c.split == split
                )
            )
            conn.execute(
                evaluations.insert().values(
                    trial_pk=pk, split=split, metrics=metrics, report=report, evaluated_at=now()
                )
            )

    def finish_experiment(
        self, experiment_id: int, status: ExperimentStatus, stop_reason: str | None = None
    ) -> None:
        """Record how the experiment ended, and why it stopped before its budget, if it did."""
        with self.engine.begin() as conn:
            conn.execute(
                experiments.update()
                .where(experiments.c.id == experiment_id)
                .values(status=status.value, finished_at=now(), stop_reason=stop_reason)
            )

    def reopen_experiment(self, experiment_id: int) -> None:
        """Mark an experiment running again (`hpo resume`); a stop reason goes with its end."""
        with self.engine.begin() as conn:
            conn.execute(
                experiments.update()
                .where(experiments.c.id == experiment_id)
                .values(status=ExperimentStatus.RUNNING.value, finished_at=None, stop_reason=None)
            )

    def interrupt_trials(self, experiment_id: int) -> int:
        """Mark the experiment's running and waiting trials interrupted; returns how many."""
        unfinished = [TrialStatus.RUNNING.value, TrialStatus.PENDING.value]
        with self.engine.begin() as conn:
            return conn.execute(
                trials.update()
                .where(trials.c.experiment_id == experiment_id, trials.c.status.in_(unfinished))
                .values(status=TrialStatus.INTERRUPTED.value)
            ).rowcount

    def write(
        self, trial_rows: Sequence[dict[str, Any]], result_rows: Sequence[dict[str, Any]]
    ) -> None:
        """Upsert trials and add results, in one transaction.

        Each trial row holds `experiment_id` and `trial_id` plus the columns to set; results
        carry `experiment_id` and `trial_id` instead of the trial's primary key.
        """
        if not trial_rows and not result_rows:
            return
        pks = self._pks
        with self.engine.begin() as conn:
            for row in trial_rows:
                key = (row["experiment_id"], row["trial_id"])
                pk = pks.get(key) or self._trial_pk(conn, *key)
                if pk is None:
                    pk = conn.execute(trials.insert().values(**row)).inserted_primary_key[0]
                else:
                    conn.execute(trials.update().where(trials.c.id == pk).values(**row))
                pks[key] = pk
            inserts = []
            for row in result_rows:
                key = (row["experiment_id"], row["trial_id"])
                pk = pks.get(key) or self._trial_pk(conn, *key)
                pks[key] = pk
                inserts.append(
                    {
                        "trial_pk": pk,
                        "iteration": row["iteration"],
                        "metrics": row["metrics"],
                        "reported_at": row["reported_at"],
                    }
                )
            if inserts:
                conn.execute(results.insert(), inserts)

    def add_segment(
        self,
        experiment_id: int,
        trial_id: str,
        *,
        start_iteration: int,
        params: dict[str, Any],
        source_trial_id: str,
        source_number: int,
    ) -> int:
        """Record that PBT cloned trial `source_trial_id` into `trial_id` at `start_iteration`,
        with `params`; returns the new segment's number (the trial as it started is 0)."""
        with self.engine.begin() as conn:
            pk = self._pks.get((experiment_id, trial_id)) or self._trial_pk(
                conn, experiment_id, trial_id
            )
            if pk is None:
                raise ValueError(f"no trial {trial_id!r} in experiment {experiment_id}")
            last = conn.execute(
                sa.select(sa.func.max(segments.c.segment)).where(segments.c.trial_pk == pk)
            ).scalar()
            number = (last or 0) + 1
            conn.execute(
                segments.insert().values(
                    trial_pk=pk,
                    segment=number,
                    start_iteration=start_iteration,
                    params=params,
                    source_trial_id=source_trial_id,
                    source_number=source_number,
                )
            )
            return number

    def segment_rows(self, experiment_id: int) -> list[dict[str, Any]]:
        """The recorded PBT segments of an experiment's trials (each exploit's), in order."""
        query = (
            sa.select(
                trials.c.number,
                segments.c.segment,
                segments.c.start_iteration,
                segments.c.params,
                segments.c.source_number,
            )
            .join(trials, trials.c.id == segments.c.trial_pk)
            .where(trials.c.experiment_id == experiment_id)
            .order_by(trials.c.number, segments.c.segment)
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def delete_results(self, experiment_id: int, trial_id: str, from_iteration: int) -> None:
        """Forget a trial's results from `from_iteration` on: a retried trial reports them again."""
        with self.engine.begin() as conn:
            pk = self._pks.get((experiment_id, trial_id)) or self._trial_pk(
                conn, experiment_id, trial_id
            )
            conn.execute(
                results.delete().where(
                    results.c.trial_pk == pk, results.c.iteration >= from_iteration
                )
            )

    @staticmethod
    def _trial_pk(conn: sa.Connection, experiment_id: int, trial_id: str) -> int | None:
        return conn.execute(
            sa.select(trials.c.id).where(
                trials.c.experiment_id == experiment_id, trials.c.trial_id == trial_id
            )
        ).scalar()

    # --- reading -------------------------------------------------------------------------------

    def experiment(self, name: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(experiments).where(experiments.c.name == name))
                .mappings()
                .first()
            )
        if row is None:
            known = self.experiment_names()
            hint = (
                f"; experiments in this store: {', '.join(known)}"
                if known
                else "; the store is empty"
            )
            raise UsageError(f"no experiment named {name!r} in {self.url}{hint}")
        return dict(row)

    def experiment_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(sa.select(experiments.c.name).order_by(experiments.c.id)).scalars()
            )

    def experiment_rows(self) -> list[dict[str, Any]]:
        counts = (
            sa.select(
                trials.c.experiment_id,
                sa.func.count().label("trials"),
                sa.func.sum(
                    sa.case((trials.c.status == TrialStatus.COMPLETED.value, 1), else_=0)
                ).label("completed"),
                sa.func.sum(
                    sa.case((trials.c.status == TrialStatus.PRUNED.value, 1), else_=0)
                ).label("pruned"),
                sa.func.sum(
                    sa.case((trials.c.status == TrialStatus.ERROR.value, 1), else_=0)
                ).label("errored"),
                sa.func.min(trials.c.best_value).label("min_value"),
                sa.func.max(trials.c.best_value).label("max_value"),
            )
            .group_by(trials.c.experiment_id)
            .subquery()
        )
        query = (
            sa.select(
                experiments.c.name,
                experiments.c.status,
                experiments.c.metric,
                experiments.c.mode,
                experiments.c.searcher,
                experiments.c.scheduler,
                experiments.c.started_at,
                experiments.c.finished_at,
                experiments.c.stop_reason,
                counts.c.trials,
                counts.c.completed,
                counts.c.pruned,
                counts.c.errored,
                counts.c.min_value,
                counts.c.max_value,
            )
            .select_from(experiments.outerjoin(counts, counts.c.experiment_id == experiments.c.id))
            .order_by(experiments.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def trial_rows(
        self, experiment_id: int, columns: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """An experiment's trials in order of number; `columns` (names of the trials table)
        limits what is read, since decoding the large JSON ones costs most of the time."""
        selected = [trials.c[name] for name in columns] if columns else [trials]
        with self.engine.connect() as conn:
            query = (
                sa.select(*selected)
                .where(trials.c.experiment_id == experiment_id)
                .order_by(trials.c.number)
            )
            return [dict(row) for row in conn.execute(query).mappings()]

    def best_trials(
        self,
        experiment_id: int,
        mode: Mode | str,
        k: int = 1,
        columns: Sequence[str] = ("trial_id",),
    ) -> list[dict[str, Any]]:
        """The `k` best trials by their best value of the spec's metric, best first (among
        equals, the first by number); errored trials and those without a value do not count.

        The one place that says which trial is best: the runner's test evaluation, the
        results' `Experiment.best` and `hpo best` read it here."""
        best = trials.c.best_value.asc() if Mode(mode) is Mode.MIN else trials.c.best_value.desc()
        query = (
            sa.select(*[trials.c[name] for name in columns])
            .where(
                trials.c.experiment_id == experiment_id,
                trials.c.status != TrialStatus.ERROR.value,
                trials.c.best_value.is_not(None),
            )
            .order_by(best, trials.c.number)
            .limit(k)
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def outcome(self, experiment_id: int) -> Outcome:
        """How the experiment's trials ended: how many count as finished (completed, pruned,
        or cut short by the time budget after reporting), and the first error by number."""
        finished = sa.or_(
            trials.c.status.in_([status.value for status in TrialStatus if status.succeeded]),
            sa.and_(trials.c.status == TrialStatus.INTERRUPTED.value, trials.c.iterations > 0),
        )
        mine = trials.c.experiment_id == experiment_id
        with self.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).where(mine, finished)).scalar()
            error = conn.execute(
                sa.select(trials.c.error)
                .where(mine, trials.c.error.is_not(None))
                .order_by(trials.c.number)
                .limit(1)
            ).scalar()
        return Outcome(count or 0, error.splitlines()[0] if error else None)

    def trial_config(self, experiment_id: int, trial: str | int) -> dict[str, Any] | None:
        """The config of one trial, by trial id or number (None if there is no such trial)."""
        key = trials.c.number if isinstance(trial, int) else trials.c.trial_id
        with self.engine.connect() as conn:
            query = sa.select(trials.c.config).where(
                trials.c.experiment_id == experiment_id, key == trial
            )
            return conn.execute(query).scalar()

    def result_rows(self, experiment_id: int) -> list[dict[str, Any]]:
        query = (
            sa.select(
                trials.c.trial_id, results.c.iteration, results.c.metrics, results.c.reported_at
            )
            .join(trials, trials.c.id == results.c.trial_pk)
            .where(trials.c.experiment_id == experiment_id)
            .order_by(trials.c.number, results.c.iteration)
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def evaluation_rows(self, experiment_id: int) -> list[dict[str, Any]]:
        """The experiment's evaluations (`set_evaluation`), each with its trial's `trial_id`
        and `number`, in order of trial number and split."""
        query = (
            sa.select(
                trials.c.trial_id,
                trials.c.number,
                evaluations.c.split,
                evaluations.c.metrics,
                evaluations.c.report,
                evaluations.c.evaluated_at,
            )
            .join(trials, trials.c.id == evaluations.c.trial_pk)
            .where(trials.c.experiment_id == experiment_id)
            .order_by(trials.c.number, evaluations.c.split)
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]
