"""TensorBoard beside the store, written by the driver: one run per trial, and a real HParams
table.

Under `<results>/<experiment>/tensorboard/`: the experiment's HParams config (every searched
parameter with its real domain, every metric as final and best) at the root, and one run
folder per trial with its scalars per epoch, its hparams at its start (so running trials
appear at once), and its final and best metrics when it ends. This avoids
`SummaryWriter.add_hparams`, which makes a separate run per call.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hpo.events._events import (
    Consumer,
    Event,
    SearchEnded,
    SearchStarted,
    StoredTrial,
    TrialEnded,
    TrialReported,
    TrialStarted,
)
from hpo.search import CategoricalDist, ConstantDist, FloatDist, IntDist, Space
from hpo.types import TrialStatus

# The metrics the trainable reports that make sense as HParams columns.
_NOT_METRICS = {
    "epoch",
    "epoch_time_s",
    "time_total_s",
    "lr",
    "grad_norm",
    "micro_batches",
    "effective_batch_size",
}


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


class _RunWriter:
    """One TensorBoard run folder, written with TensorBoard's own event writer: the driver
    need not import torch (seconds) to track."""

    def __init__(self, path: Path):
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._events = EventFileWriter(str(path), flush_secs=5)
        # Imported once per run folder, not for every scalar of every result.
        self._event, self._summary, self._value = Event, Summary, Summary.Value

    def summary(self, summary: Any, step: int = 0) -> None:
        self._events.add_event(self._event(wall_time=time.time(), step=step, summary=summary))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.summary(self._summary(value=[self._value(tag=tag, simple_value=float(value))]), step)

    def close(self) -> None:
        self._events.close()


class TensorBoardTracker(Consumer):
    """Writes each trial's metrics and hparams for TensorBoard's scalars and HParams dashboards.

    A trial's `best/` values are the stream's: a trial `hpo resume` continued goes on from its
    stored best, in its earlier run's folder.
    """

    best_effort = True

    def __init__(self, logdir: Path, space: Space, metric_names: list[str]):
        self.logdir = Path(logdir)
        self.space = space
        self.metric_names = [m for m in metric_names if m not in _NOT_METRICS]
        self._writers: dict[str, Any] = {}  # by the trial's id in the store

    # Ray pickles callbacks with the experiment's state; open writers are not picklable.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_writers": {}}

    def receive(self, event: Event) -> None:
        match event:
            case SearchStarted():
                self._experiment()
            case TrialStarted(trial=trial):
                self._started(trial)
            case TrialReported(trial=trial, iteration=step, metrics=metrics):
                writer = self._writer(trial)
                for name, value in metrics.items():
                    writer.scalar(name, value, step)
            case TrialEnded(trial=trial):
                self._ended(trial)
            case SearchEnded():
                self.close()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def _experiment(self) -> None:
        from tensorboard.plugins.hparams import api_pb2, metadata

        metrics = [f"{kind}/{name}" for name in self.metric_names for kind in ("final", "best")]
        experiment = api_pb2.Experiment(
            hparam_infos=[_hparam_info(key, dist) for key, dist in self.space.dists.items()],
            metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metrics],
        )
        root = _RunWriter(self.logdir)
        root.summary(_plugin_summary(metadata.EXPERIMENT_TAG, experiment=experiment))
        root.close()

    def _writer(self, trial: StoredTrial) -> Any:
        writer = self._writers.get(trial.trial_id)
        if writer is None:
            # A continued trial (`hpo resume`) writes on in its earlier run's folder.
            writer = self._writers[trial.trial_id] = _RunWriter(
                self.logdir / f"trial_{trial.number:05d}"
            )
        return writer

    def _started(self, trial: StoredTrial) -> None:
        from tensorboard.plugins.hparams import metadata, plugin_data_pb2

        start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
        for key, value in trial.params.items():
            start.hparams[key].CopyFrom(_value(value))
        self._writer(trial).summary(
            _plugin_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start)
        )

    def _ended(self, trial: StoredTrial) -> None:
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        writer = self._writer(trial)
        for name in self.metric_names:
            if name in trial.last:
                writer.scalar(f"final/{name}", trial.last[name], trial.iteration)
            if name in trial.best:
                writer.scalar(f"best/{name}", trial.best[name], trial.iteration)
        # TensorBoard has no "pruned": a pruned trial ended early on purpose, not by failing.
        status = "STATUS_FAILURE" if trial.status is TrialStatus.ERROR else "STATUS_SUCCESS"
        end = plugin_data_pb2.SessionEndInfo(
            status=api_pb2.Status.Value(status), end_time_secs=time.time()
        )
        writer.summary(_plugin_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end))
        writer.close()
        self._writers.pop(trial.trial_id, None)
