"""From a validated spec to a finished search: Ray Tune's Tuner, configured once, here."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from rich.console import Console

from hpo.errors import RunFailed, RunInterrupted, SpecError, SpecIssue, UsageError
from hpo.results import Experiment
from hpo.runner._cluster import Placement, connect
from hpo.runner._local_ray import TRAINABLE_MODULES
from hpo.runner._resources import check_resources
from hpo.runner._tuner import run_tuner
from hpo.spec import Spec, check_stored, gather, load_spec
from hpo.store import ExperimentStatus, Store, resolve_url
from hpo.trainable.evaluation import evaluate_on_test, evaluate_remotely
from hpo.trainable.preflight import check_user_code, load_data, loads_in_driver

if TYPE_CHECKING:
    from hpo.resuming import Prior, ResumePlan

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
        source = spec
        if isinstance(spec, Spec):
            # What the spec set, not its defaults: a spec of the user's own trainable must
            # not come back holding every section of hpo's.
            source = spec.model_dump(mode="json", exclude_unset=True)
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
    on_end: Callable[[Experiment], None] | None = None,
) -> Experiment:
    """Run a validated spec on Ray Tune, recording into the store at `store_url`.

    `function` is a user's training function given as an object (`hpo.tune`), which then
    stands for the spec's `trainable` reference. `live` shows the live progress view in a
    terminal; otherwise (and off a terminal) a line per finished trial. `address` and
    `storage_path` override the spec's `ray` section (see `hpo.runner._cluster`). `on_end`
    is called with the experiment once it has completed and been recorded, before Ray shuts
    down (about a second): the CLI prints its summary there.
    """
    console = console or Console()
    spec_data = {**spec.model_dump(mode="json"), "num_trials": spec.num_trials()}
    check_stored(spec, store_url)  # before anything starts
    prior = gather(spec, store_url)

    def record(placement: Placement) -> tuple[Store, int, str]:
        store = Store(store_url)
        experiment_id, name = store.create_experiment(
            spec.name, spec_data, storage_path=placement.storage_path
        )
        if name != spec.name:
            console.print(
                f"An experiment named {spec.name!r} is already in the store; "
                f"this run is [bold]{name}[/]."
            )
        console.print(
            f"Running [bold]{name}[/]: {spec.num_trials()} trials, {spec.searcher.name} search, "
            f"{spec.scheduler.name} scheduler, {spec.mode.value} {spec.metric}",
            highlight=False,
        )
        return store, experiment_id, name

    run = _prepare(
        spec,
        function,
        console,
        record,
        name=spec.name,
        results_dir=Path(results_dir),
        address=address,
        storage_path=storage_path,
    )
    run.prior = _told(prior, console)
    return _search(run, callbacks, live, resume=None, on_end=on_end)


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
    on_end: Callable[[Experiment], None] | None = None,
    go_on: bool = False,
) -> Experiment:
    """Go on with an experiment that stopped before its end (Ctrl-C, a killed driver, a lost
    machine): its unfinished trials continue from their latest checkpoints, and new trials
    make up its budget; see `hpo.resuming._plan` for what is kept.

    Args:
        store_url: the results store (default as for `hpo run`).
        errored: also run its errored trials again.
        function: the user's training function, for an experiment of `hpo.tune`.
        address: the Ray cluster to run on (default: the spec's, as for `hpo run`).
        on_end: called as `execute`'s is, once the resumed experiment has completed (not
            when it had nothing left to run).
        go_on: go on with an experiment that `budget.stop_when` stopped (`--continue`), up
            to its budget; without it, such an experiment is refused.

    Raises:
        UsageError: the experiment had stopped early by its `budget.stop_when`, and `go_on`
            is not set.
    """
    from hpo.resuming import plan_resume

    console = console or Console()
    store = Store(resolve_url(store_url), create=False)
    row = store.experiment(name)
    stopped = row.get("stop_reason")
    if stopped and not go_on:
        raise UsageError(
            f"{name!r} had stopped early, as its spec asked: {stopped}. It is complete; "
            f"`hpo resume {name} --continue` runs it on to its budget"
        )
    if stopped:
        console.print(
            f"[bold]{name}[/] had stopped early ({stopped}); going on (--continue).",
            highlight=False,
        )
    # The spec as it ran (validated then; every section dumped, defaults included).
    try:
        spec = Spec.model_validate({k: v for k, v in row["spec"].items() if k != "num_trials"})
    except ValidationError as exc:
        raise UsageError(
            f"the spec stored with {name!r} no longer validates ({exc.error_count()} problems; "
            f"first: {exc.errors()[0]['msg']}); run it again with `hpo run`"
        ) from None
    # Checkpoints are read where the trials wrote them: a folder of this machine, or shared.
    # (At a cloud URI they are not searched, and continued trials start over; see README.)
    if stopped:  # it goes on to its budget: the stop it met would only stop it again
        spec = spec.model_copy(
            update={"budget": spec.budget.model_copy(update={"stop_when": None})}
        )
    trial_folders = Path(row["storage_path"]) / name
    plan = plan_resume(store, row, spec.num_trials(), trial_folders, errored=errored)
    ended = row["status"] in (ExperimentStatus.COMPLETED.value, ExperimentStatus.FAILED.value)
    if plan.num_trials == 0 and ended:
        console.print(f"[bold]{name}[/] has nothing left to run.")
        return Experiment(name, store)

    if spec.scheduler.name == "pbt":
        raise UsageError(
            f"{name!r} ran Population Based Training, which cannot be resumed: its population "
            "(each trial's score and time of its last perturbation, and which checkpoint each "
            "clone goes on from) lives in Ray's scheduler and is not saved, so continued "
            "trials would be judged against a population they never met and their schedules "
            f"would be wrong; run it again with `hpo run` ({plan.num_trials} of "
            f"{spec.num_trials()} trials were left)"
        )

    def record(placement: Placement) -> tuple[Store, int, str]:
        store.reopen_experiment(row["id"])
        recovered = sum(len(t.recovered) for t in plan.continued)
        console.print(
            f"Resuming [bold]{name}[/]: {len(plan.finished)} trials done, "
            f"{len(plan.continued)} to continue, {plan.new} new"
            + (f" ({recovered} results taken from checkpoints)" if recovered else ""),
            highlight=False,
        )
        return store, row["id"], name

    run = _prepare(
        spec,
        function,
        console,
        record,
        name=name,
        results_dir=Path(DEFAULT_RESULTS_DIR),
        address=address,
        storage_path=row["storage_path"],  # the trials go on where they were stored
    )
    # Told again: a searcher rebuilt from the store knows what the first run's knew.
    run.prior = gather(spec, store.url)
    return _search(run, callbacks, live, resume=plan, on_end=on_end)


def _told(prior: Prior, console: Console) -> Prior:
    for note in prior.notes:
        console.print(f"Warm start: {note}", highlight=False)
    return prior


def _prepare(
    spec: Spec,
    function: Callable[..., Any] | None,
    console: Console,
    record: Callable[[Placement], tuple[Store, int, str]],
    *,
    name: str,
    results_dir: Path,
    address: str | None,
    storage_path: str | None,
) -> _Run:
    """What a run and a resume both do before the trials: check the user's input, load the
    data, reach Ray and its storage (`storage_path`, else the spec's, else `results_dir`),
    then `record` the experiment as running (it returns the store, the experiment's id and
    its name, and says what runs).

    What can fail on the user's input fails first, before anything is written or started.
    """
    if spec.tracking.mlflow is not None and importlib.util.find_spec("mlflow") is None:
        issue = SpecIssue(
            "tracking.mlflow", "MLflow is not installed: pip install 'hpo-orchestra[mlflow]'"
        )
        raise SpecError(spec.name, [issue])
    if function is None:
        function = check_user_code(spec)
    else:  # what the spec's `trainable` names is the caller's object, not imported (it may be local)
        spec = spec.with_trainable(function)
    # A Pipeline subclass runs hpo's own loop; only a function is the user's own.
    pipeline = function if isinstance(function, type) else None
    if pipeline is not None:
        function = None
    import ray  # noqa: F401  (here, whole, before the helper thread imports parts of it)

    # Ray (local, or the cluster asked for) starts on this thread, as Ray expects; meanwhile a
    # helper thread loads hpo's in-memory data (once, here; data on disk only ever in the
    # trials) and imports what the Tuner will need. Nothing is written before both are done.
    loads_data = function is None and loads_in_driver(spec, pipeline)
    with ThreadPoolExecutor(1, thread_name_prefix="hpo-setup") as helper:
        ready = helper.submit(_ready_driver, spec, loads_data)
        try:
            # A local Ray's workers import hpo's trainable while this driver sets up.
            placement = connect(
                name,
                spec.ray,
                results_dir,
                address=address,
                storage_path=storage_path,
                console=console,
                preload=TRAINABLE_MODULES if function is None else (),
            )
        except BaseException:
            ready.result()  # the data's error first: the user's input fails before Ray's
            raise
        try:
            dataset = ready.result()
        except BaseException:
            placement.release()  # bad data must not leave Ray running
            raise
    try:
        # A trial no node can hold would wait forever: refuse it as a spec error, unwritten.
        check_resources(spec, console)
        store, experiment_id, name = record(placement)
    except BaseException:
        placement.release()  # a bad request or store URL must not leave Ray running
        raise
    files_dir = _files_dir(placement, results_dir)
    return _Run(
        spec, name, experiment_id, store, files_dir, console, function, pipeline, dataset, placement
    )


def _ready_driver(spec: Spec, loads_data: bool) -> Any:
    """hpo's in-memory data, loaded (None when the trials open their data), once the modules
    the Tuner and the trial stream will import are imported too.

    Raises:
        SpecError: the data cannot be loaded.
    """
    dataset = load_data(spec) if loads_data else None
    # Imported while Ray starts instead of after it: Ray Tune (about 2 s on a small machine),
    # its schedulers and Optuna searcher (Optuna's TPE is hpo's default), and hpo's consumers
    # of the trial events.
    import ray.tune.schedulers
    import ray.tune.search.optuna  # noqa: F401

    import hpo.events  # noqa: F401

    return dataset


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
    function: Callable[..., Any] | None  # the user's own training function
    pipeline: type[Any] | None  # the user's Pipeline subclass (None: hpo's own, or a function)
    dataset: Any  # hpo's in-memory data, loaded here (None: opened in the trials)
    placement: Placement
    prior: Prior | None = None  # what the spec's warm_start and enqueue tell the searcher


def _search(
    run: _Run,
    callbacks: Sequence[Any],
    live: bool,
    resume: ResumePlan | None,
    on_end: Callable[[Experiment], None] | None = None,
) -> Experiment:
    """Run the trials of `run` on Ray Tune and record how the experiment ended; a completed
    one goes to `on_end` before Ray shuts down."""
    from hpo.runner._quiet import native_stderr_to
    from hpo.runner._signals import stop_on_signals
    from hpo.search import quiet_optuna

    store = run.store
    status, first_error, stop_reason = ExperimentStatus.FAILED, None, None
    recorded = False

    def end() -> None:
        nonlocal status, first_error, recorded
        # A completed search stays completed if its test evaluation fails (that raises).
        status, first_error = _outcome(run)
        if status is ExperimentStatus.COMPLETED and _has_test_split(run):
            _evaluate_best_on_test(run)
        if status is ExperimentStatus.COMPLETED:
            _record_end(store, run.experiment_id, status, stop_reason)
            recorded = True
            if on_end is not None:
                on_end(Experiment(run.name, store))

    try:
        if resume is not None and not resume.num_trials:
            # A run killed after its last trial and before its end has only its end to record.
            run.placement.release()
            end()
        else:
            # The first Ctrl-C or SIGTERM stops the trials gracefully; a second one, also
            # while Ray shuts down after the first, stops at once.
            # Ray's C++ core writes to this process's stderr until Ray has shut down (at the
            # end here): into the run's Ray log, not onto the terminal.
            with (
                native_stderr_to(run.storage_path / run.name / "ray.log"),
                stop_on_signals(lambda: _stop_at_once(run)) as stop_requested,
                # Building Ray's OptunaSearch creates a study, and it tells it each trial.
                quiet_optuna(),
            ):
                try:
                    stop_reason = run_tuner(run, callbacks, live, resume)
                    if stop_reason is not None and on_end is None:  # else the summary says it
                        run.console.print(f"Stopped early: {stop_reason}", highlight=False)
                    if stop_requested.is_set():
                        status = ExperimentStatus.INTERRUPTED
                    else:  # while Ray is up: a test split on disk is read where trials ran,
                        # and the summary is shown before Ray's shutdown, not after it
                        end()
                finally:
                    run.placement.release()
    except KeyboardInterrupt:
        if not recorded:
            status = ExperimentStatus.INTERRUPTED
        raise
    finally:
        if not recorded:
            _record_end(
                store,
                run.experiment_id,
                status,
                stop_reason if status is ExperimentStatus.COMPLETED else None,
            )
    if status is ExperimentStatus.INTERRUPTED:
        raise RunInterrupted(run.name, resume_command(run.name, store.url, run.placement))
    if status is ExperimentStatus.FAILED:
        raise RunFailed(
            f"no trial of {run.name!r} finished without an error; "
            f"the first error: {first_error or 'no trial ran'}"
        )
    return Experiment(run.name, store)  # as it ended


def _outcome(run: _Run) -> tuple[ExperimentStatus, str | None]:
    """How the trials ended, as the store says (decided by the recorder's records, not by an
    analysis table), and the first error."""
    outcome = run.store.outcome(run.experiment_id)
    status = ExperimentStatus.COMPLETED if outcome.finished else ExperimentStatus.FAILED
    return status, outcome.first_error


def _stop_at_once(run: _Run) -> None:
    """A second Ctrl-C: the store says the experiment was interrupted, and how to go on."""
    # No flush of buffered results: the main thread may be inside one, and a resume runs
    # those epochs again from the last checkpoint anyway.
    try:
        _record_end(run.store, run.experiment_id, ExperimentStatus.INTERRUPTED)
    finally:
        command = resume_command(run.name, run.store.url, run.placement)
        sys.stderr.write(f"Continue it with: {command}\n")


def _record_end(
    store: Store, experiment_id: int, status: ExperimentStatus, stop_reason: str | None = None
) -> None:
    if status is ExperimentStatus.INTERRUPTED:
        store.interrupt_trials(experiment_id)
    store.finish_experiment(experiment_id, status, stop_reason)


def resume_command(name: str, store_url: str, placement: Placement) -> str:
    """The command that resumes an experiment (naming its store unless it is the default, and
    the cluster it ran on)."""
    command = f"hpo resume {shlex.quote(name)}"
    if store_url != resolve_url(None, None):
        command += f" --store {shlex.quote(store_url)}"
    if placement.address is not None:
        command += f" --address {shlex.quote(placement.address)}"
    return command


def _has_test_split(run: _Run) -> bool:
    """Whether the trials hold out a test split: the spec's `data.test_fraction`, or maybe
    (the pipeline tells) where a Pipeline subclass sets up its data itself."""
    if run.function is not None:
        return False
    if run.spec.data.test_fraction > 0:
        return True
    return run.pipeline is not None and not loads_in_driver(run.spec, run.pipeline)


def _evaluate_best_on_test(run: _Run) -> None:
    """Evaluate the best trial once on the held-out test split and store its metrics."""
    spec, store = run.spec, run.store
    top = store.best_trials(
        run.experiment_id,
        spec.mode,
        columns=["trial_id", "number", "iterations", "checkpoint_path"],
    )
    if not top:
        return
    best = top[0]
    config = store.trial_config(run.experiment_id, best["trial_id"])
    where = {"checkpoint": best["checkpoint_path"], "epochs": best["iterations"]}
    if run.dataset is not None:  # in memory here already
        evaluation = evaluate_on_test(config, run.dataset, pipeline=run.pipeline, **where)
    else:  # on disk: read by a Ray task where the trials read it, never by this driver
        import ray

        if not ray.is_initialized():  # a resume with only the end left to record
            return
        resources = run.spec.resources  # one process's share (of a DDP group: one worker's)
        evaluation = evaluate_remotely(
            config, pipeline=run.pipeline, cpu=resources.cpu, gpu=resources.gpu, **where
        )
    if evaluation is None:  # a pipeline of its own, without a test split
        return
    metrics = evaluation.metrics
    store.set_test_metrics(run.experiment_id, best["trial_id"], metrics)
    store.set_evaluation(
        run.experiment_id, best["trial_id"], evaluation.split, metrics, evaluation.report
    )
    shown = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
    run.console.print(f"Best trial {best['number']} on the test split: {shown}", highlight=False)
    what = (
        "confusion matrix and per-class report"
        if evaluation.report["kind"] == "classification"
        else "residuals"
    )
    command = f"hpo show {shlex.quote(run.name)} --best"
    if store.url != resolve_url(None, None):
        command += f" --store {shlex.quote(store.url)}"
    run.console.print(f"Its {what}: {command}", highlight=False)
