"""The store's tables: one schema for every database (SQLAlchemy Core)."""

from __future__ import annotations

import sqlalchemy as sa

# Version 2 added the environment of a run, per-metric final and best values, the parts of a
# trial's error, its node, checkpoint and test metrics (see `migrations.py`). Version 3 added
# the evaluations table, a trial's peak memory, the micro-batches it trained in, `repeat_of`,
# PBT's segments, why a search stopped before its budget (`budget.stop_when`),
# and whether a trial meets the spec's constraints.
SCHEMA_VERSION = 3


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata, sa.Column("version", sa.Integer, nullable=False)
)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("metric", sa.String(200), nullable=False),
    sa.Column("mode", sa.String(3), nullable=False),
    sa.Column("searcher", sa.String(50), nullable=False),
    sa.Column("scheduler", sa.String(50), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("num_samples", sa.Integer, nullable=False),
    sa.Column("host", sa.String(255)),
    sa.Column("storage_path", sa.Text),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    # v2: where the run came from
    sa.Column("git_commit", sa.String(64)),
    sa.Column("git_dirty", sa.Boolean),
    sa.Column("versions", sa.JSON),  # python, hpo, torch, ray, optuna
    sa.Column("test_metrics", sa.JSON),  # the best trial's, on the held-out test split
    # v3: why the search stopped before its budget (budget.stop_when); None: it did not
    sa.Column("stop_reason", sa.Text),
)

trials = sa.Table(
    "trials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("experiment_id", sa.ForeignKey("experiments.id"), nullable=False, index=True),
    sa.Column("trial_id", sa.String(100), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),  # the active searched parameters only
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("ended_at", sa.DateTime),
    sa.Column("iterations", sa.Integer, nullable=False, default=0),
    # The spec's metric: its last reported value, and its best in the spec's mode.
    sa.Column("value", sa.Float),
    sa.Column("best_value", sa.Float),
    sa.Column("last_result", sa.JSON),
    sa.Column("error", sa.Text),  # v1's whole error text; v2 keeps it as the message's first line
    # v2
    sa.Column("final_metrics", sa.JSON),
    sa.Column("best_metrics", sa.JSON),
    sa.Column("error_type", sa.String(200)),
    sa.Column("error_traceback", sa.Text),
    sa.Column("node", sa.String(255)),
    sa.Column("checkpoint_path", sa.Text),
    sa.Column("test_metrics", sa.JSON),
    # v3
    sa.Column("peak_memory_mb", sa.Float),  # CUDA's max allocated, or the peak RSS's growth
    sa.Column("micro_batches", sa.Integer),  # pieces of each batch (training.on_oom: split)
    # the number of the finished trial whose config this one repeats; it was not trained
    # (its searcher was told that trial's result), and it has no value of its own.
    sa.Column("repeat_of", sa.Integer),
    # whether its last result meets every constraint of the spec (None: the spec has none)
    sa.Column("feasible", sa.Boolean),
    sa.UniqueConstraint("experiment_id", "trial_id"),
    sa.Index("ix_trials_experiment_best", "experiment_id", "best_value"),
    sa.Index("ix_trials_experiment_number", "experiment_id", "number"),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trial_pk", sa.ForeignKey("trials.id"), nullable=False, index=True),
    sa.Column("iteration", sa.Integer, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("reported_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("trial_pk", "iteration"),
)

# v3: a trial's model evaluated on one split (the best trial on the test split at the end of a
# search; any trial with a checkpoint by `hpo evaluate`): its metrics and the guide's report
# (confusion matrix and per-class table, or residuals), as JSON. One row per trial and split;
# evaluating again replaces it.
evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trial_pk", sa.ForeignKey("trials.id"), nullable=False, index=True),
    sa.Column("split", sa.String(20), nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("report", sa.JSON, nullable=False),
    sa.Column("evaluated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("trial_pk", "split"),
)

# v3: a trial's schedule under PBT. Segment 0 is the trial as it started (its row's params);
# each exploit starts the next: from `start_iteration` on, the trial goes on from the
# checkpoint of trial `source_number` at that epoch, with `params`.
segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trial_pk", sa.ForeignKey("trials.id"), nullable=False, index=True),
    sa.Column("segment", sa.Integer, nullable=False),
    sa.Column("start_iteration", sa.Integer, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("source_trial_id", sa.String(100)),
    sa.Column("source_number", sa.Integer),
    sa.UniqueConstraint("trial_pk", "segment"),
)
