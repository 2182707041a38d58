"""What the driver does with trials as they run: one stream of trial events, adapted once from
Ray Tune's hooks (`TrialStream`), and its consumers: the store recorder, the live view, the
trackers (TensorBoard, MLflow), fail-fast, study-level stopping, and the checkpoint keeper."""

from hpo.events._checkpoint_keeper import BestCheckpoints
from hpo.events._events import (
    Consumer,
    Event,
    SearchEnded,
    SearchStarted,
    StepEnded,
    StoredTrial,
    TrialAdded,
    TrialEnded,
    TrialError,
    TrialExploited,
    TrialReported,
    TrialStarted,
    TrialsWaiting,
)
from hpo.events._fail_fast import FailFast
from hpo.events._mlflow import MlflowTracker
from hpo.events._progress import progress_view
from hpo.events._recorder import StoreRecorder
from hpo.events._stream import EarlierRuns, TrialStream
from hpo.events._study_stop import StudyStop
from hpo.events._tensorboard import TensorBoardTracker
from hpo.events._waiting import RESOURCE_NAMES, amount_text, bundle_text, number_text

__all__ = [
    "RESOURCE_NAMES",
    "BestCheckpoints",
    "Consumer",
    "EarlierRuns",
    "Event",
    "FailFast",
    "MlflowTracker",
    "SearchEnded",
    "SearchStarted",
    "StepEnded",
    "StoreRecorder",
    "StoredTrial",
    "StudyStop",
    "TensorBoardTracker",
    "TrialAdded",
    "TrialEnded",
    "TrialError",
    "TrialExploited",
    "TrialReported",
    "TrialStarted",
    "TrialStream",
    "TrialsWaiting",
    "amount_text",
    "bundle_text",
    "number_text",
    "progress_view",
]
