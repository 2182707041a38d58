"""The reusable PyTorch trainable: config, data, models and loops; runs with or without Ray.

Only the torch-free parts are imported here (the CLI's validation reads them). The loop is
`hpo.trainable.pipeline.Pipeline` (also `hpo.Pipeline`), which a user may subclass; `fit` in
`hpo.trainable.loop` trains one config in plain Python. Both import torch, as do the data
opened in a trial (`datasets`, `image_folder`), its `transforms` and its `loaders`.
"""

from hpo._registry import Entry
from hpo.trainable.config import FINAL_KEY, TrainableConfig, reported_metrics
from hpo.trainable.data import (
    DATASETS,
    Dataset,
    DatasetEntry,
    Task,
    load_dataset,
    loaded_in_driver,
    make_dataset,
)
from hpo.trainable.models import MODELS
from hpo.trainable.optim import OPTIMIZERS
from hpo.trainable.schedules import LR_SCHEDULERS

__all__ = [
    "DATASETS",
    "FINAL_KEY",
    "LR_SCHEDULERS",
    "MODELS",
    "OPTIMIZERS",
    "Dataset",
    "DatasetEntry",
    "Entry",
    "Task",
    "TrainableConfig",
    "load_dataset",
    "loaded_in_driver",
    "make_dataset",
    "reported_metrics",
]
