"""Ray Tune's Tuner for one run of an experiment, configured once, here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hpo.errors import RunFailed
from hpo.runner._quiet import quiet_ray
from hpo.runner._resources import trial_resources
from hpo.spec import Spec

if TYPE_CHECKING:
    from hpo.resuming import ResumePlan
    from hpo.runner._runner import _Run


def _consumers(run: _Run, live: bool, num_trials: int, fail_fast: Any) -> list[Any]:
    """What the trial events go to, in order: the store first, then what the spec asks for."""
    from hpo.events import (
        BestCheckpoints,
        MlflowTracker,
        StoreRecorder,
        TensorBoardTracker,
        progress_view,
    )
    from hpo.trainable.config import reported_metrics

    spec = run.spec
    consumers: list[Any] = [
        StoreRecorder(run.store, run.experiment_id, spec.metric, spec.parsed_constraints()),
        fail_fast,
        progress_view(
            run.console,
            live=live,
            metric=spec.metric,
            mode=spec.mode,
            total=num_trials,
            budget_s=spec.budget.time_budget_s,
            objectives=spec.objective_modes(),
            constraints=spec.parsed_constraints(),
        ),
    ]
    if spec.tracking.tensorboard:
        metrics = [spec.metric] if run.function else reported_metrics(spec)
        tensorboard = run.storage_path / run.name / "tensorboard"
        consumers.append(TensorBoardTracker(tensorboard, spec.search_space(), metrics))
    if spec.tracking.mlflow is not None:
        mlflow = spec.tracking.mlflow
        consumers.append(
            MlflowTracker(mlflow.tracking_uri, mlflow.experiment_name or run.name, run.name)
        )
    # Keep only the best trials' checkpoints, where hpo's trainable writes any.
    if run.function is None and spec.checkpoint.every:
        consumers.append(
            BestCheckpoints(
                run.store, run.experiment_id, spec.metric, spec.mode, spec.checkpoint.keep_trials
            )
        )
    return consumers


def _study_stop(spec: Spec) -> Any:
    """The stopper of `budget.stop_when`, or None where the spec sets none."""
    from hpo.events import StudyStop

    when = spec.budget.stop_when
    if when is None or (when.no_improvement is None and when.reaches is None):
        return None
    patience = when.no_improvement
    return StudyStop(
        spec.metric,
        spec.mode,
        patience=None if patience is None else patience.trials,
        min_delta=0.0 if patience is None else patience.min_delta,
        reaches=when.reaches,
    )


def run_tuner(
    run: _Run, callbacks: Sequence[Any], live: bool, resume: ResumePlan | None
) -> str | None:
    """Run the search on Ray Tune (a signal stops it gracefully: see `_search`).

    Returns:
        Why `budget.stop_when` stopped the search before its budget (None: it did not).
    """
    from ray import tune
    from ray.tune.stopper import CombinedStopper

    from hpo.events import EarlierRuns, FailFast, TrialStream
    from hpo.resuming import Prior, fresh
    from hpo.runner._signals import StopRequested

    spec, name, store, storage_path = run.spec, run.name, run.store, run.storage_path
    space = spec.search_space()
    trainable = _trainable(spec, run)
    num_trials = spec.num_trials() if resume is None else resume.num_trials
    fail_fast = FailFast(spec.budget.fail_fast)  # also a stopper: it stops the search
    study_stop = _study_stop(spec)  # likewise
    consumers = _consumers(run, live, num_trials, fail_fast)
    if study_stop is not None:  # after the store: a trial's end is recorded before it counts
        consumers.insert(1, study_stop)
    stream = TrialStream(
        consumers,
        space,
        spec.metric,
        spec.mode,
        EarlierRuns.of(None if resume is None else resume.run_start()),
        lean=run.function is None,  # a user's own function's config is its own
    )
    prior = run.prior or Prior()
    warm = fresh(prior, num_trials) if resume is None else resume.warm_start(prior)
    try:
        search_alg, param_space = spec.searcher.build(
            space,
            spec.base_config(),
            metric=spec.metric,
            mode=spec.mode,
            seed=spec.seed,
            num_samples=spec.num_trials(),
            max_concurrent=spec.budget.max_concurrent,
            warm=warm,
            on_repeat=stream.repeated,
            objectives=spec.objective_modes(),
            constraints=spec.parsed_constraints(),
        )
        trainable = tune.with_resources(trainable, trial_resources(spec.resources))
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=spec.metric,
                mode=spec.mode.value,
                search_alg=search_alg,
                scheduler=spec.scheduler.build(
                    epochs=None if run.function else spec.training.epochs,
                    on_prune=stream.pruned,
                    history=None if resume is None else resume.history(),
                    space=space,
                    on_exploit=stream.exploited,
                ),
                num_samples=num_trials,
                time_budget_s=spec.budget.time_budget_s,
                # Trials have equal resources, so one actor can run trial after trial
                # instead of paying an actor start (about a second) per trial.
                reuse_actors=True,
                trial_dirname_creator=_trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=run.placement.storage_path,
                verbose=0,
                stop=CombinedStopper(
                    StopRequested(), fail_fast, *([study_stop] if study_stop else [])
                ),
                # Checkpoints exist only at the spec's cadence (`checkpoint.every`); each
                # trial keeps its best few by the spec's metric.
                failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
                checkpoint_config=tune.CheckpointConfig(
                    # PBT clones a trial from another's latest checkpoint: Ray must not have
                    # deleted it for a better one (the ended trials' go as `keep_trials` says).
                    num_to_keep=None if spec.scheduler.keeps_checkpoints else spec.checkpoint.keep,
                    checkpoint_score_attribute=spec.metric,
                    checkpoint_score_order=spec.mode.value,
                ),
                callbacks=[stream, *callbacks],
            ),
        )
        log_dir = storage_path / name
        log_dir.mkdir(parents=True, exist_ok=True)
        with quiet_ray(log_dir / "ray.log"):
            tuner.fit()
        # Trials that Ray ended without a word to its callbacks (the time budget ran out, or a
        # stop) stay resumable rather than RUNNING or PENDING forever.
        store.interrupt_trials(run.experiment_id)
        if fail_fast.tripped:
            raise RunFailed(fail_fast.reason())
        return None if study_stop is None else study_stop.reason
    finally:
        stream.close()  # Ray stays up: the caller releases it (see `_search`)


def _trainable(spec: Spec, run: _Run) -> Any:
    """The function Ray runs for each trial: hpo's loop (of its own pipeline or the user's
    `Pipeline` subclass), or the user's function.

    The data and the user's code reach the trials once, through Ray's object store
    (`with_parameters`), not pickled into every trial.
    """
    from ray import tune

    from hpo.trainable.user_function import run_user_function, shipped_by_value

    pipeline = None if run.pipeline is None else shipped_by_value(run.pipeline)
    if run.function is None and spec.resources.workers > 1:
        from hpo.trainable.distributed import ddp_trainable

        return tune.with_parameters(
            ddp_trainable,
            dataset=run.dataset,
            workers=spec.resources.workers,
            cpu=spec.resources.cpu,
            gpu=spec.resources.gpu,
            storage_path=run.placement.storage_path,
            pipeline=pipeline,
        )
    if run.function is None:
        from hpo.trainable.ray_trainable import tune_trainable

        return tune.with_parameters(tune_trainable, dataset=run.dataset, pipeline=pipeline)
    return tune.with_parameters(
        run_user_function,
        user_fn=shipped_by_value(run.function),
        seed=spec.seed,
        metric=spec.metric,
    )


def _trial_dirname(trial: Any) -> str:
    """Short trial folders: Ray's default name repeats every constant of the config."""
    return f"trial_{trial.trial_id}"
