"""From a validated spec to a finished search: Ray Tune's Tuner, configured once, here."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from hpo.analysis import Experiment
from hpo.errors import RunFailed, SpecError, SpecIssue
from hpo.spec import Spec, load_spec
from hpo.store import ExperimentStatus, Store, TrialStatus, resolve_url

DEFAULT_RESULTS_DIR = "hpo-results"


def run(
    spec: str | Path | dict[str, Any] | Spec,
    *,
    console: Console | None = None,
    callbacks: Sequence[Any] = (),
    **overrides: Any,
) -> Experiment:
    """Run a search and return its experiment.

    Args:
        spec: a spec file, a spec as a dict, or a loaded `Spec`.
        console: where progress goes (default: stdout).
        callbacks: extra Ray Tune callbacks, called beside hpo's own.
        **overrides: spec keys to override, dotted or with `__` for the dots
            (`budget__num_samples=50`), e.g. `name="try-2"`, `store="sqlite:///x.db"`.

    Raises:
        SpecError: the spec (with its overrides) is invalid; nothing was started.
        RunFailed: no trial finished without an error.
    """
    if not isinstance(spec, Spec) or overrides:
        source = spec.model_dump(mode="json") if isinstance(spec, Spec) else spec
        spec = load_spec(
            source, {key.replace("__", "."): value for key, value in overrides.items()}
        )
    return execute(
        spec, store_url=resolve_url(None, spec.store), console=console, callbacks=callbacks
    )


def execute(
    spec: Spec,
    *,
    store_url: str,
    console: Console | None = None,
    results_dir: str | Path = DEFAULT_RESULTS_DIR,
    callbacks: Sequence[Any] = (),
    function: Callable[..., Any] | None = None,
    live: bool = True,
) -> Experiment:
    """Run a validated spec on Ray Tune, recording into the store at `store_url`.

    `function` is a user's training function given as an object (`hpo.tune`), which then
    stands for the spec's `trainable` reference. `live` shows the live progress view in a
    terminal; otherwise (and off a terminal) a line per finished trial.
    """
    console = console or Console()
    if spec.tracking.mlflow is not None and importlib.util.find_spec("mlflow") is None:
        issue = SpecIssue(
            "tracking.mlflow", "MLflow is not installed: pip install 'hpo-orchestra[mlflow]'"
        )
        raise SpecError(spec.name, [issue])
    # What can fail on the user's input fails here, before anything is written or started.
    if function is None:
        function = check_user_code(spec)
    dataset = _load_data(spec) if function is None else None
    store = Store(store_url)
    storage_path = Path(results_dir).resolve()
    spec_data = {**spec.model_dump(mode="json"), "num_trials": spec.num_trials()}
    experiment_id, name = store.create_experiment(
        spec.name, spec_data, storage_path=str(storage_path)
    )
    if name != spec.name:
        console.print(
            f"An experiment named {spec.name!r} is already in the store; this run is [bold]{name}[/]."
        )
    console.print(
        f"Running [bold]{name}[/]: {spec.num_trials()} trials, {spec.searcher.name} search, "
        f"{spec.scheduler.name} scheduler, {spec.mode.value} {spec.metric}",
        highlight=False,
    )

    status = ExperimentStatus.FAILED
    try:
        _tune(
            spec,
            name,
            experiment_id,
            store,
            storage_path,
            console,
            callbacks,
            function,
            dataset,
            live,
        )
        experiment = Experiment(name, store)
        finished = experiment.trials()["status"].isin(
            [TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value]
        )
        status = ExperimentStatus.COMPLETED if finished.any() else ExperimentStatus.FAILED
        if finished.any() and dataset is not None and spec.data.test_fraction > 0:
            _evaluate_best_on_test(experiment, dataset, console)
    except KeyboardInterrupt:
        status = ExperimentStatus.INTERRUPTED
        raise
    finally:
        store.finish_experiment(experiment_id, status)
    if status is ExperimentStatus.FAILED:
        raise RunFailed(_failure_message(experiment))
    return experiment


# Read by Ray Tune while it runs; set only for hpo's runs, and only where the user has not.
_TUNE_ENVIRONMENT = {
    # Ray's per-trial JSON/CSV/TensorBoard loggers duplicate what the store keeps and cost
    # time per result; experts can turn them back on by setting the variable to 0.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Ray's newer console output prints its banner even at verbose=0; hpo reports instead.
    "RAY_AIR_NEW_OUTPUT": "0",
}


def _checkpoint_keepers(spec: Spec, store: Store, experiment_id: int) -> list[Any]:
    """Keep only the best trials' checkpoints, where hpo's trainable writes any."""
    if spec.trainable or not spec.checkpoint.every:
        return []
    from hpo.recording import BestCheckpoints

    return [
        BestCheckpoints(
            store, experiment_id, spec.metric, spec.mode.value, spec.checkpoint.keep_trials
        )
    ]


def _trackers(spec: Spec, name: str, experiment_dir: Path, pruned: set[str]) -> list[Any]:
    """The tracking callbacks the spec asks for."""
    from hpo.tracking import MlflowTracker, TensorBoardTracker
    from hpo.trainable.config import reported_metrics

    trackers: list[Any] = []
    if spec.tracking.tensorboard:
        metrics = [spec.metric] if spec.trainable else reported_metrics(spec.data)
        trackers.append(
            TensorBoardTracker(
                experiment_dir / "tensorboard",
                spec.search_space(),
                spec.metric,
                spec.mode.value,
                metrics,
            )
        )
    if spec.tracking.mlflow is not None:
        mlflow = spec.tracking.mlflow
        trackers.append(
            MlflowTracker(
                mlflow.tracking_uri,
                mlflow.experiment_name or name,
                name,
                spec.search_space(),
                pruned,
            )
        )
    return trackers


@contextmanager
def _environment(defaults: dict[str, str]) -> Iterator[None]:
    """Set environment variables that are not set yet, and unset them afterwards."""
    added = {key: value for key, value in defaults.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextmanager
def _without_callback_telemetry() -> Iterator[None]:
    """Skip Ray's usage-telemetry tag of a run's callbacks, and only that.

    To name the built-in callbacks it counts, Ray imports its MLflow, W&B, Comet and Aim
    integrations in every run that has callbacks (hpo's always has): with MLflow installed,
    1 to 4 s before the first trial can start, for a tag that would only say "CustomCallback".
    """
    from ray.air._internal import usage

    original = getattr(usage, "tag_callbacks", None)
    if original is None:  # a Ray without it: nothing to skip
        yield
        return
    usage.tag_callbacks = lambda callbacks: False
    try:
        yield
    finally:
        usage.tag_callbacks = original


@contextmanager
def _ray_logs_to(path: Path) -> Iterator[None]:
    """Send Ray's log records (trial tracebacks included), and those of hpo's own callbacks,
    to a file in the experiment's folder instead of the terminal.

    The store keeps each failed trial's error, and the summary shows it; the terminal shows
    hpo's own progress only.
    """
    # hpo hands Ray's variant generator whole configurations over a base that holds every
    # searched key; Ray warns about each such value, which says nothing to a reader.
    logging.getLogger("ray.tune.search.variant_generator").setLevel(logging.ERROR)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in ("ray", "hpo")]
    saved = [(logger.handlers, logger.propagate, logger.level) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [handler], False
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, (handlers, propagate, level) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        handler.close()


def _failure_message(experiment: Experiment) -> str:
    errors = experiment.trials()["error"].dropna()
    first = errors.iloc[0].splitlines()[0] if not errors.empty else "no trial ran"
    return f"no trial of {experiment.name!r} finished without an error; the first error: {first}"


def _tune(
    spec: Spec,
    name: str,
    experiment_id: int,
    store: Store,
    storage_path: Path,
    console: Console,
    callbacks: Sequence[Any],
    function: Callable[..., Any] | None,
    dataset: Any,
    live: bool,
) -> None:
    """Run the search on Ray Tune."""
    import ray
    from ray import tune

    from hpo.progress import progress_view
    from hpo.recording import StoreRecorder

    space = spec.search_space()
    trainable = _trainable(spec, function, dataset)
    pruned: set[str] = set()  # trials the scheduler stops early, as it decides
    view = progress_view(
        console,
        live=live,
        space=space,
        metric=spec.metric,
        mode=spec.mode.value,
        total=spec.num_trials(),
        pruned=pruned,
        budget_s=spec.budget.time_budget_s,
    )
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        search_alg, param_space = spec.searcher.build(
            space,
            spec.base_config(),
            metric=spec.metric,
            mode=spec.mode.value,
            seed=spec.seed,
            num_samples=spec.num_trials(),
            max_concurrent=spec.budget.max_concurrent,
        )
        trainable = tune.with_resources(
            trainable, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
        )
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=spec.metric,
                mode=spec.mode.value,
                search_alg=search_alg,
                scheduler=spec.scheduler.build(
                    epochs=None if spec.trainable else spec.training.epochs, pruned=pruned
                ),
                num_samples=spec.num_trials(),
                time_budget_s=spec.budget.time_budget_s,
                # Trials have equal resources, so one actor can run trial after trial
                # instead of paying an actor start (about a second) per trial.
                reuse_actors=True,
                trial_dirname_creator=_trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(storage_path),
                verbose=0,
                # Checkpoints exist only at the spec's cadence (`checkpoint.every`); each
                # trial keeps its best few by the spec's metric.
                failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=spec.checkpoint.keep,
                    checkpoint_score_attribute=spec.metric,
                    checkpoint_score_order=spec.mode.value,
                ),
                callbacks=[
                    StoreRecorder(
                        store, experiment_id, space, spec.metric, spec.mode.value, pruned
                    ),
                    view,
                    *_trackers(spec, name, storage_path / name, pruned),
                    *_checkpoint_keepers(spec, store, experiment_id),
                    *callbacks,
                ],
            ),
        )
        log_dir = storage_path / name
        log_dir.mkdir(parents=True, exist_ok=True)
        with (
            _ray_logs_to(log_dir / "ray.log"),
            _environment(_TUNE_ENVIRONMENT),
            _without_callback_telemetry(),
        ):
            tuner.fit()
    finally:
        view.close()
        if started_ray:
            ray.shutdown()
    return dataset


def _trainable(spec: Spec, function: Callable[..., Any] | None, dataset: Any) -> Any:
    """The function Ray runs for each trial: hpo's trainable, or the user's function.

    The data and a user's function reach the trials once, through Ray's object store
    (`with_parameters`), not pickled into every trial.
    """
    from ray import tune

    if function is None:
        from hpo.trainable.ray_trainable import tune_trainable

        return tune.with_parameters(tune_trainable, dataset=dataset)
    from hpo.custom import run_user_function, shipped_by_value

    return tune.with_parameters(
        run_user_function, user_fn=shipped_by_value(function), seed=spec.seed
    )


def check_user_code(spec: Spec) -> Callable[..., Any] | None:
    """Import what the spec names by `package.module:function` (its trainable, its model), so
    that a typo is a spec error now rather than a failure in every trial.

    Returns:
        The user's training function, or None for hpo's own trainable.
    """
    from hpo.trainable.user_code import is_reference, load_callable

    if spec.trainable:
        return _user_function(spec)
    if is_reference(spec.model.name):
        try:
            load_callable(spec.model.name)
        except (ImportError, TypeError, ValueError) as exc:
            raise SpecError(
                spec.name, [SpecIssue("model.name", f"cannot load {spec.model.name!r}: {exc}")]
            ) from None
    return None


def _load_data(spec: Spec) -> Any:
    """The experiment's dataset, loaded once in the driver, or why it cannot be."""
    from hpo.trainable.data import load_dataset

    try:
        return load_dataset(spec.data)
    except (OSError, ValueError, ImportError, TypeError, KeyError) as exc:
        raise SpecError(spec.name, [SpecIssue("data", f"cannot load the data: {exc}")]) from None


def _user_function(spec: Spec) -> Callable[..., Any]:
    """Import the spec's `trainable` reference, or say why it cannot be."""
    from hpo.trainable.user_code import load_callable

    try:
        return load_callable(spec.trainable)
    except (ImportError, TypeError, ValueError) as exc:
        raise SpecError(
            spec.name, [SpecIssue("trainable", f"cannot load {spec.trainable!r}: {exc}")]
        ) from None


def _trial_dirname(trial: Any) -> str:
    """Short trial folders: Ray's default name repeats every constant of the config."""
    return f"trial_{trial.trial_id}"


def _evaluate_best_on_test(experiment: Experiment, dataset: Any, console: Console) -> None:
    """Evaluate the best trial once on the held-out test split and store its metrics.

    From its last checkpoint where it has one; otherwise the trial is trained again to the
    same epoch, which gives the same weights (trials are seeded by their config).
    """
    from hpo.trainable.checkpoint import load_checkpoint
    from hpo.trainable.loop import Trainer

    best = experiment.best(1).iloc[0]
    trainer = Trainer(experiment.config(best["trial_id"]), dataset)
    checkpoint = best["checkpoint_path"]
    if isinstance(checkpoint, str) and Path(checkpoint).is_dir():
        trainer.load_state_dict(load_checkpoint(checkpoint))
    else:
        for metrics in trainer.run():
            if metrics["epoch"] >= best["iterations"]:
                break
    metrics = trainer.test()
    experiment.store.set_test_metrics(experiment.row["id"], best["trial_id"], metrics)
    experiment.row = experiment.store.experiment(experiment.name)
    shown = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    console.print(f"Best trial {best['number']} on the test split: {shown}", highlight=False)
