"""Tracking beside the store, written by the driver: TensorBoard, and MLflow as an option.

TensorBoard: one run per trial, and a real HParams table.

Under `<results>/<experiment>/tensorboard/`: the experiment's HParams config (every searched
parameter with its real domain, every metric as final and best) at the root, and one run
folder per trial with its scalars per epoch, its hparams at its start (so running trials
appear at once), and its final and best metrics when it ends. This avoids
`SummaryWriter.add_hparams`, which makes a separate run per call.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.result import TRAINING_ITERATION

from hpo.events._recorder import reported_metrics, trial_number
from hpo.resuming import store_trial_id
from hpo.search import CategoricalDist, ConstantDist, FloatDist, IntDist, Space
from hpo.types import keep_best

logger = logging.getLogger(__name__)

# The metrics the trainable reports that make sense as HParams columns.
_NOT_METRICS = {"epoch", "epoch_time_s", "time_total_s", "lr", "grad_norm"}


def _plugin_summary(tag: str, **data: Any) -> Any:
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    content = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **data)
    plugin = SummaryMetadata.PluginData(
        plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString()
    )
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])


def _value(value: Any) -> Any:
    from google.protobuf import struct_pb2

    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, int | float):
        return struct_pb2.Value(number_value=float(value))
    return struct_pb2.Value(string_value=str(value))


def _hparam_info(key: str, dist: Any) -> Any:
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2

    if isinstance(dist, FloatDist | IntDist) and dist.step in (None, 1):
        return api_pb2.HParamInfo(
            name=key,
            type=api_pb2.DataType.Value("DATA_TYPE_FLOAT64"),
            domain_interval=api_pb2.Interval(min_value=float(dist.low), max_value=float(dist.high)),
        )
    values = dist.points() or []
    if isinstance(dist, CategoricalDist | ConstantDist) and any(isinstance(v, str) for v in values):
        kind = "DATA_TYPE_STRING"
    elif all(isinstance(v, bool) for v in values):
        kind = "DATA_TYPE_BOOL"
    else:
        kind = "DATA_TYPE_FLOAT64"
    return api_pb2.HParamInfo(
        name=key,
        type=api_pb2.DataType.Value(kind),
        domain_discrete=struct_pb2.ListValue(values=[_value(v) for v in values]),
    )


def _never_fails_a_trial(method: Callable[..., None]) -> Callable[..., None]:
    """Ray fails a trial whose callback raises; tracking is not worth a trial. A tracker that
    fails logs why (to the experiment's ray.log) and stops tracking."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> None:
        if self.broken:
            return
        try:
            method(self, *args, **kwargs)
        except Exception:
            self.broken = True
            logger.exception("%s stopped tracking", type(self).__name__)

    return guarded


class _RunWriter:
    """One TensorBoard run folder, written with TensorBoard's own event writer: the driver
    need not import torch (seconds) to track."""

    def __init__(self, path: Path):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._events = EventFileWriter(str(path), flush_secs=5)

    def summary(self, summary: Any, step: int = 0) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._events.add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        self.summary(Summary(value=[Summary.Value(tag=tag, simple_value=float(value))]), step)

    def close(self) -> None:
        self._events.close()


class TensorBoardTracker(Callback):
    """Writes each trial's metrics and hparams for TensorBoard's scalars and HParams dashboards."""

    broken = False

    def __init__(self, logdir: Path, space: Space, metric: str, mode: str, metric_names: list[str]):
        self.logdir = Path(logdir)
        self.space = space
        self.metric = metric
        self.mode = mode
        self.metric_names = [m for m in metric_names if m not in _NOT_METRICS]
        self._writers: dict[str, Any] = {}
        self._best: dict[str, dict[str, float]] = {}

    # Ray pickles callbacks with the experiment's state; open writers are not picklable.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_writers": {}}

    @_never_fails_a_trial
    def setup(self, **info: Any) -> None:
        from tensorboard.plugins.hparams import api_pb2, metadata

        metrics = [f"{kind}/{name}" for name in self.metric_names for kind in ("final", "best")]
        experiment = api_pb2.Experiment(
            hparam_infos=[_hparam_info(key, dist) for key, dist in self.space.dists.items()],
            metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metrics],
        )
        root = _RunWriter(self.logdir)
        root.summary(_plugin_summary(metadata.EXPERIMENT_TAG, experiment=experiment))
        root.close()

    def _writer(self, trial: Any, trials: list) -> Any:
        writer = self._writers.get(trial.trial_id)
        if writer is None:
            # A continued trial (`hpo resume`) writes on in its earlier run's folder.
            number = trial_number(trial, trials)
            writer = self._writers[trial.trial_id] = _RunWriter(self.logdir / f"trial_{number:05d}")
        return writer

    @_never_fails_a_trial
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from tensorboard.plugins.hparams import metadata, plugin_data_pb2

        params = self.space.params_of(trial.config)
        start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
        for key, value in params.items():
            start.hparams[key].CopyFrom(_value(value))
        writer = self._writer(trial, trials)
        writer.summary(_plugin_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start))

    @_never_fails_a_trial
    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        writer = self._writer(trial, trials)
        step = int(result[TRAINING_ITERATION])
        metrics = reported_metrics(result)
        for name, value in metrics.items():
            writer.scalar(name, value, step)
        keep_best(self._best.setdefault(trial.trial_id, {}), metrics, self.metric, self.mode)

    def _end(self, trial: Any, trials: list, status: str) -> None:
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        writer = self._writer(trial, trials)
        result = trial.last_result or {}
        step = int(result.get(TRAINING_ITERATION, 0))
        final = reported_metrics(result)
        for name in self.metric_names:
            if name in final:
                writer.scalar(f"final/{name}", final[name], step)
            if name in self._best.get(trial.trial_id, {}):
                writer.scalar(f"best/{name}", self._best[trial.trial_id][name], step)
        end = plugin_data_pb2.SessionEndInfo(
            status=api_pb2.Status.Value(status), end_time_secs=time.time()
        )
        writer.summary(_plugin_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end))
        writer.close()
        self._writers.pop(trial.trial_id, None)

    @_never_fails_a_trial
    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # TensorBoard has no "pruned": a pruned trial ended early on purpose, not by failing.
        self._end(trial, trials, "STATUS_SUCCESS")

    @_never_fails_a_trial
    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, trials, "STATUS_FAILURE")

    @_never_fails_a_trial
    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class MlflowTracker(Callback):
    """One MLflow run per trial: its active params at its start, its metrics every epoch, and
    its end (FINISHED, KILLED when pruned, FAILED), in the experiment `experiment_name`."""

    broken = False

    def __init__(
        self,
        tracking_uri: str | None,
        experiment_name: str,
        hpo_experiment: str,
        space: Space,
        pruned: set[str],
    ):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.hpo_experiment = hpo_experiment
        self.space = space
        self.pruned = pruned
        self._runs: dict[str, str] = {}  # trial id -> MLflow run id
        self._client: Any = None
        self._experiment_id: str | None = None

    # Ray pickles callbacks with the experiment's state; the client reconnects when needed.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    @_never_fails_a_trial
    def setup(self, **info: Any) -> None:
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self._client.get_experiment_by_name(self.experiment_name)
        self._experiment_id = (
            found.experiment_id if found else self._client.create_experiment(self.experiment_name)
        )

    @_never_fails_a_trial
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from mlflow.entities import Param

        number = trial_number(trial, trials)
        run = self._client.create_run(
            self._experiment_id,
            run_name=f"{self.hpo_experiment}/trial_{number:05d}",
            tags={
                "hpo.experiment": self.hpo_experiment,
                "hpo.trial_id": store_trial_id(trial),
                "hpo.number": str(number),
            },
        )
        self._runs[trial.trial_id] = run.info.run_id
        params = [
            Param(key, str(value)) for key, value in self.space.params_of(trial.config).items()
        ]
        self._client.log_batch(run.info.run_id, params=params)

    @_never_fails_a_trial
    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        from mlflow.entities import Metric

        run_id = self._runs.get(trial.trial_id)
        if run_id is None:
            return
        step = int(result[TRAINING_ITERATION])
        stamp = int(time.time() * 1000)
        metrics = [
            Metric(name, value, stamp, step)
            for name, value in reported_metrics(result).items()
            if math.isfinite(value)
        ]
        self._client.log_batch(run_id, metrics=metrics)

    def _end(self, trial: Any, status: str) -> None:
        run_id = self._runs.pop(trial.trial_id, None)
        if run_id is not None:
            self._client.set_terminated(run_id, status)

    @_never_fails_a_trial
    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from hpo.events._recorder import finished_by_itself

        self._end(trial, "FINISHED" if finished_by_itself(trial, self.pruned) else "KILLED")

    @_never_fails_a_trial
    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, "FAILED")
