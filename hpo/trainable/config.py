"""The trainable's config: what one trial trains, as typed, frozen sections.

A spec's `data`, `model`, `optimizer` and `training` sections are this config; the search
space writes into it by dotted key. The trainable validates its config again on entry, so
it can be run and tested without Ray or a spec.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from hpo.options import Options
from hpo.trainable.data import DATASETS, Task

# Set on the last result of a trial that ran to its end (Ray marks results `done` also when
# its scheduler stops a trial, so "completed" and "pruned" cannot be told apart otherwise).
FINAL_KEY = "trial_finished"


class DataConfig(Options):
    name: str = Field("digits", description="a built-in dataset")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share held out for validation")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
        return name


class ModelConfig(Options):
    name: Literal["mlp"] = "mlp"
    hidden_size: int = Field(64, ge=1, description="units in each hidden layer")
    num_layers: int = Field(2, ge=0, description="hidden layers (0 gives a linear model)")
    activation: Literal["relu", "gelu", "tanh", "silu"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)


class OptimizerConfig(Options):
    name: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1, description="used by sgd only")


class TrainingConfig(Options):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)


class TrainableSections(Options):
    """The sections a spec shares with the trainable's config (the spec adds its own keys).

    A section added here is a spec section too, validated and searchable by dotted key.
    """

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    training: TrainingConfig = TrainingConfig()


class TrainableConfig(TrainableSections):
    """Everything one trial needs to train."""

    # The experiment's seed: fixes the data split for every trial, so trials are comparable.
    seed: int = 0


def reported_metrics(data: DataConfig) -> list[str]:
    """The metrics the trainable reports every epoch for this data (the spec's `metric` is one).

    Known before any data is loaded, so that a spec naming another metric is rejected early.
    """
    names = ["epoch", "train_loss", "val_loss", "epoch_time_s"]
    return [*names, "val_accuracy"] if DATASETS[data.name].task is Task.CLASSIFICATION else names
