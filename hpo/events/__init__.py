"""What the driver does with trials as they run: the store recorder, the live view, the
trackers (TensorBoard, MLflow), fail-fast, and the checkpoint keeper."""

from hpo.events._checkpoint_keeper import BestCheckpoints
from hpo.events._fail_fast import FailFast
from hpo.events._progress import progress_view
from hpo.events._recorder import StoreRecorder
from hpo.events._tracking import MlflowTracker, TensorBoardTracker

__all__ = [
    "BestCheckpoints",
    "FailFast",
    "MlflowTracker",
    "StoreRecorder",
    "TensorBoardTracker",
    "progress_view",
]
