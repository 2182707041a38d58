"""The reusable PyTorch trainable: config, data, models and loops; runs with or without Ray."""

from hpo.trainable.config import TrainableConfig
from hpo.trainable.data import DATASETS, Dataset, Task, load_dataset

__all__ = ["DATASETS", "Dataset", "Task", "TrainableConfig", "load_dataset"]
