"""From a validated spec to a finished search: Ray Tune's Tuner, configured once, here."""

from __future__ import annotations

import importlib.util
import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from rich.console import Console

from hpo.analysis import Experiment
from hpo.cluster import Placement, connect
from hpo.errors import RunFailed, RunInterrupted, SpecError, SpecIssue, UsageError
from hpo.spec import Spec, load_spec
from hpo.store import ExperimentStatus, Store, TrialStatus, resolve_url

if TYPE_CHECKING:
    from hpo.resume_plan import ResumePlan

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
    address: str | None = None,
    storage_path: str | None = None,
) -> Experiment:
    """Run a validated spec on Ray Tune, recording into the store at `store_url`.

    `function` is a user's training function given as an object (`hpo.tune`), which then
    stands for the spec's `trainable` reference. `live` shows the live progress view in a
    terminal; otherwise (and off a terminal) a line per finished trial. `address` and
    `storage_path` override the spec's `ray` section (see `hpo.cluster`).
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
    # Ray (local, or the cluster asked for), and storage every node reaches, before any write.
    placement = connect(
        spec.name,
        spec.ray,
        Path(results_dir),
        address=address,
        storage_path=storage_path,
        console=console,
    )
    spec_data = {**spec.model_dump(mode="json"), "num_trials": spec.num_trials()}
    try:
        store = Store(store_url)
        experiment_id, name = store.create_experiment(
            spec.name, spec_data, storage_path=placement.storage_path
        )
    except BaseException:
        placement.release()  # a bad store URL must not leave Ray running
        raise
    if name != spec.name:
        console.print(
            f"An experiment named {spec.name!r} is already in the store; this run is [bold]{name}[/]."
        )
    console.print(
        f"Running [bold]{name}[/]: {spec.num_trials()} trials, {spec.searcher.name} search, "
        f"{spec.scheduler.name} scheduler, {spec.mode.value} {spec.metric}",
        highlight=False,
    )
    run = _Run(
        spec, name, experiment_id, store, _files_dir(placement, results_dir), console,
        function, dataset, placement,
    )
    return _search(run, callbacks, live, resume=None)


def resume(
    name: str,
    *,
    store_url: str | None = None,
    errored: bool = False,
    console: Console | None = None,
    callbacks: Sequence[Any] = (),
    function: Callable[..., Any] | None = None,
    live: bool = True,
    address: str | None = None,
) -> Experiment:
    """Go on with an experiment that stopped before its end (Ctrl-C, a killed driver, a lost
    machine): its unfinished trials continue from their latest checkpoints, and new trials
    make up its budget; see `hpo.resume_plan` for what is kept.

    Args:
        store_url: the results store (default as for `hpo run`).
        errored: also run its errored trials again.
        function: the user's training function, for an experiment of `hpo.tune`.
        address: the Ray cluster to run on (default: the spec's, as for `hpo run`).
    """
    from hpo.resume_plan import plan_resume

    console = console or Console()
    store = Store(resolve_url(store_url), create=False)
    row = store.experiment(name)
    # The spec as it ran (validated then; every section dumped, defaults included).
    try:
        spec = Spec.model_validate({k: v for k, v in row["spec"].items() if k != "num_trials"})
    except ValidationError as exc:
        raise UsageError(
            f"the spec stored with {name!r} no longer validates ({exc.error_count()} problems; "
            f"first: {exc.errors()[0]['msg']}); run it again with `hpo run`"
        ) from None
    if function is None:
        function = check_user_code(spec)
    # Checkpoints are read where the trials wrote them: a folder of this machine, or shared.
    # (At a cloud URI they are not searched, and continued trials start over; see README.)
    trial_folders = Path(row["storage_path"]) / name
    plan = plan_resume(store, row, spec.num_trials(), trial_folders, errored=errored)
    ended = row["status"] in (ExperimentStatus.COMPLETED.value, ExperimentStatus.FAILED.value)
    if plan.num_trials == 0 and ended:
        console.print(f"[bold]{name}[/] has nothing left to run.")
        return Experiment(name, store)
    dataset = _load_data(spec) if function is None else None
    placement = connect(
        name,
        spec.ray,
        Path(row["storage_path"]),
        address=address,
        storage_path=row["storage_path"],
        console=console,
    )
    store.reopen_experiment(row["id"])
    recovered = sum(len(t.recovered) for t in plan.continued)
    console.print(
        f"Resuming [bold]{name}[/]: {len(plan.finished)} trials done, "
        f"{len(plan.continued)} to continue, {plan.new} new"
        + (f" ({recovered} results taken from checkpoints)" if recovered else ""),
        highlight=False,
    )
    run = _Run(
        spec, name, row["id"], store, _files_dir(placement, DEFAULT_RESULTS_DIR), console,
        function, dataset, placement,
    )
    return _search(run, callbacks, live, resume=plan)


def _files_dir(placement: Placement, results_dir: str | Path) -> Path:
    """Where hpo's own files (Ray's log, TensorBoard) go: beside the trials, or in the local
    results folder when the trials are stored at a cloud URI."""
    return Path(results_dir if placement.is_uri else placement.storage_path).resolve()


@dataclass
class _Run:
    """One run of an experiment: its spec, where it is recorded, what its trials need."""

    spec: Spec
    name: str
    experiment_id: int
    store: Store
    storage_path: Path  # hpo's own files go under storage_path / name
    console: Console
    function: Callable[..., Any] | None
    dataset: Any
    placement: Placement


def _search(
    run: _Run, callbacks: Sequence[Any], live: bool, resume: ResumePlan | None
) -> Experiment:
    """Run the trials of `run` on Ray Tune and record how the experiment ended."""
    from hpo.interrupts import stop_on_signals

    store, spec = run.store, run.spec
    status = ExperimentStatus.FAILED
    experiment = Experiment(run.name, store)
    try:
        if resume is not None and not resume.num_trials:
            # A run killed after its last trial and before its end has only its end to record.
            stopped = False
            run.placement.release()
        else:
            # The first Ctrl-C or SIGTERM stops the trials gracefully; a second one, also
            # while Ray shuts down after the first, stops at once.
            with stop_on_signals(lambda: _stop_at_once(run)) as stop_requested:
                _tune(run, callbacks, live, resume)
            stopped = stop_requested.is_set()
        if stopped:
            status = ExperimentStatus.INTERRUPTED
        else:
            trials = experiment.trials()
            # Trials cut short by the time budget count with the epochs they reported.
            finished = trials["status"].isin(
                [TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value]
            ) | ((trials["status"] == TrialStatus.INTERRUPTED.value) & (trials["iterations"] > 0))
            status = ExperimentStatus.COMPLETED if finished.any() else ExperimentStatus.FAILED
            if finished.any() and run.dataset is not None and spec.data.test_fraction > 0:
                _evaluate_best_on_test(experiment, run.dataset, run.console)
    except KeyboardInterrupt:
        status = ExperimentStatus.INTERRUPTED
        raise
    finally:
        _record_end(store, run.experiment_id, status)
    if status is ExperimentStatus.INTERRUPTED:
        raise RunInterrupted(run.name, resume_command(run.name, store.url, run.placement))
    if status is ExperimentStatus.FAILED:
        raise RunFailed(_failure_message(experiment))
    experiment.row = store.experiment(run.name)  # as it ended
    return experiment


def _stop_at_once(run: _Run) -> None:
    """A second Ctrl-C: the store says the experiment was interrupted, and how to go on."""
    # No flush of buffered results: the main thread may be inside one, and a resume runs
    # those epochs again from the last checkpoint anyway.
    try:
        _record_end(run.store, run.experiment_id, ExperimentStatus.INTERRUPTED)
    finally:
        command = resume_command(run.name, run.store.url, run.placement)
        sys.stderr.write(f"Continue it with: {command}\n")


def _record_end(store: Store, experiment_id: int, status: ExperimentStatus) -> None:
    if status is ExperimentStatus.INTERRUPTED:
        store.interrupt_trials(experiment_id)
    store.finish_experiment(experiment_id, status)


def resume_command(name: str, store_url: str, placement: Placement) -> str:
    """The command that resumes an experiment (naming its store unless it is the default, and
    the cluster it ran on)."""
    command = f"hpo resume {shlex.quote(name)}"
    if store_url != resolve_url(None, None):
        command += f" --store {shlex.quote(store_url)}"
    if placement.address is not None:
        command += f" --address {shlex.quote(placement.address)}"
    return command


# Read by Ray Tune while it runs; set only for hpo's runs, and only where the user has not.
_TUNE_ENVIRONMENT = {
    # Ray's per-trial JSON/CSV/TensorBoard loggers duplicate what the store keeps and cost
    # time per result; experts can turn them back on by setting the variable to 0.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Ray's newer console output prints its banner even at verbose=0; hpo reports instead.
    "RAY_AIR_NEW_OUTPUT": "0",
    # hpo handles Ctrl-C itself (`hpo.interrupts`), also marking the store.
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
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
    run: _Run, callbacks: Sequence[Any], live: bool, resume: ResumePlan | None
) -> None:
    """Run the search on Ray Tune (a signal stops it gracefully: see `_search`)."""
    import ray
    from ray import tune
    from ray.tune.stopper import CombinedStopper

    from hpo.fail_fast import FailFast
    from hpo.interrupts import StopRequested
    from hpo.progress import progress_view
    from hpo.recording import StoreRecorder

    spec, name, store, storage_path = run.spec, run.name, run.store, run.storage_path
    space = spec.search_space()
    trainable = _trainable(spec, run.function, run.dataset, run.placement)
    num_trials = spec.num_trials() if resume is None else resume.num_trials
    pruned: set[str] = set()  # trials the scheduler stops early, as it decides
    fail_fast = FailFast(spec.budget.fail_fast)
    if resume is not None and any(t.status != "ERROR" for t in resume.finished):
        fail_fast.succeeded = True  # the code worked before: errors now are configurations'
    view = progress_view(
        run.console,
        live=live,
        space=space,
        metric=spec.metric,
        mode=spec.mode.value,
        total=num_trials,
        pruned=pruned,
        budget_s=spec.budget.time_budget_s,
    )
    recorder = StoreRecorder(
        store,
        run.experiment_id,
        space,
        spec.metric,
        spec.mode.value,
        pruned,
        **({} if resume is None else _recorder_state(resume)),
    )
    started_ray = run.placement.owned  # `connect` started Ray, or connected to the cluster
    try:
        search_alg, param_space = spec.searcher.build(
            space,
            spec.base_config(),
            metric=spec.metric,
            mode=spec.mode.value,
            seed=spec.seed,
            num_samples=spec.num_trials(),
            max_concurrent=spec.budget.max_concurrent,
            resume=resume,
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
                    epochs=None if spec.trainable else spec.training.epochs,
                    pruned=pruned,
                    history=None if resume is None else resume.history(),
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
                stop=CombinedStopper(StopRequested(), fail_fast),
                # Checkpoints exist only at the spec's cadence (`checkpoint.every`); each
                # trial keeps its best few by the spec's metric.
                failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=spec.checkpoint.keep,
                    checkpoint_score_attribute=spec.metric,
                    checkpoint_score_order=spec.mode.value,
                ),
                callbacks=[
                    recorder,
                    fail_fast,
                    view,
                    *_trackers(spec, name, storage_path / name, pruned),
                    *_checkpoint_keepers(spec, store, run.experiment_id),
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
        # Trials that Ray ended without a word to its callbacks (the time budget ran out, or a
        # stop) stay resumable rather than RUNNING or PENDING forever.
        store.interrupt_trials(run.experiment_id)
        if fail_fast.tripped:
            raise RunFailed(fail_fast.reason())
    finally:
        view.close()
        if started_ray:
            ray.shutdown()


def _recorder_state(resume: ResumePlan) -> dict[str, Any]:
    """What the store recorder of a resumed run starts from."""
    continued = resume.continued
    return {
        "first_number": resume.taken,
        "last_steps": {t.continuation.trial_id: t.last_step for t in continued},
        "best": {t.continuation.trial_id: t.best for t in continued},
        "started": {t.continuation.trial_id for t in continued if t.started},
    }


def trial_resources(resources: Any) -> dict[str, float]:
    """What Ray Tune reserves for one trial; a DDP trial's workers reserve their own."""
    if resources.workers > 1:
        from hpo.trainable.distributed import DRIVER_CPU

        return {"cpu": DRIVER_CPU, "gpu": 0}
    return {"cpu": resources.cpu, "gpu": resources.gpu}


def _trainable(
    spec: Spec, function: Callable[..., Any] | None, dataset: Any, placement: Placement
) -> Any:
    """The function Ray runs for each trial: hpo's trainable, or the user's function.

    The data and a user's function reach the trials once, through Ray's object store
    (`with_parameters`), not pickled into every trial.
    """
    from ray import tune

    if function is None and spec.resources.workers > 1:
        from hpo.trainable.distributed import ddp_trainable

        return tune.with_parameters(
            ddp_trainable,
            dataset=dataset,
            workers=spec.resources.workers,
            cpu=spec.resources.cpu,
            gpu=spec.resources.gpu,
            storage_path=placement.storage_path,
        )
    if function is None:
        from hpo.trainable.ray_trainable import tune_trainable

        return tune.with_parameters(tune_trainable, dataset=dataset)
    from hpo.custom import run_user_function, shipped_by_value

    return tune.with_parameters(
        run_user_function, user_fn=shipped_by_value(function), seed=spec.seed, metric=spec.metric
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
