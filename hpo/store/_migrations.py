"""Upgrading a store written by an older hpo, one schema version at a time.

Each step is a function of an Alembic `Operations` bound to the connection (Alembic handles
what SQLite cannot alter in place); `upgrade` runs the steps from the store's version to ours.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from hpo.store._schema import SCHEMA_VERSION, schema_version


def _v1_to_v2(op: Operations) -> None:
    for column in (
        sa.Column("git_commit", sa.String(64)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("versions", sa.JSON),
        sa.Column("test_metrics", sa.JSON),
    ):
        op.add_column("experiments", column)
    for column in (
        sa.Column("final_metrics", sa.JSON),
        sa.Column("best_metrics", sa.JSON),
        sa.Column("error_type", sa.String(200)),
        sa.Column("error_traceback", sa.Text),
        sa.Column("node", sa.String(255)),
        sa.Column("checkpoint_path", sa.Text),
        sa.Column("test_metrics", sa.JSON),
    ):
        op.add_column("trials", column)
    op.create_index("ix_trials_experiment_number", "trials", ["experiment_id", "number"])


def _v2_to_v3(op: Operations) -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trial_pk", sa.Integer, sa.ForeignKey("trials.id"), nullable=False),
        sa.Column("split", sa.String(20), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("evaluated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("trial_pk", "split"),
    )
    # As `metadata.create_all` names the index of a column with `index=True`.
    op.create_index("ix_evaluations_trial_pk", "evaluations", ["trial_pk"])
    op.add_column("trials", sa.Column("peak_memory_mb", sa.Float))
    op.add_column("trials", sa.Column("micro_batches", sa.Integer))
    op.add_column("trials", sa.Column("repeat_of", sa.Integer))
    op.add_column("experiments", sa.Column("stop_reason", sa.Text))
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trial_pk", sa.Integer, sa.ForeignKey("trials.id"), nullable=False, index=True),
        sa.Column("segment", sa.Integer, nullable=False),
        sa.Column("start_iteration", sa.Integer, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("source_trial_id", sa.String(100)),
        sa.Column("source_number", sa.Integer),
        sa.UniqueConstraint("trial_pk", "segment"),
    )
    # Trials of earlier stores ran without constraints: None, as for a spec without them.
    op.add_column("trials", sa.Column("feasible", sa.Boolean))


# version -> the step that upgrades a store of that version to the next one
STEPS: dict[int, Callable[[Operations], None]] = {1: _v1_to_v2, 2: _v2_to_v3}


def upgrade(conn: sa.Connection, version: int) -> None:
    """Upgrade the store behind `conn` from `version` to `SCHEMA_VERSION`, in one transaction."""
    op = Operations(MigrationContext.configure(conn))
    for step in range(version, SCHEMA_VERSION):
        STEPS[step](op)
    conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
