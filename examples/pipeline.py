"""Your own Pipeline: hpo's loop around your data and model.

python examples/pipeline.py

`SpiralPipeline` subclasses `hpo.Pipeline`, the shape of the PyTorch training guide's
`TrainingPipeline`, and overrides only what is its own:

- `setup_data()` sets `self.train_dataset`, `self.val_dataset` and `self.test_dataset`
  (instances of its own `Spirals` Dataset class); hpo wraps them in DataLoaders as the
  spec's `loader:` section says;
- `setup_model()` sets `self.model`, reading the spec's `model` section;
- `train_epoch()` calls hpo's (mixed precision, accumulation, clipping) and keeps a smoothed
  training loss and a count of the epochs trained, extra state that `state_dict()` and
  `load_state_dict()` carry into checkpoints, so a resumed or retried trial goes on with it.

Everything else is hpo's: the optimizer, LR schedule and loss from their sections, epochs,
early stopping, checkpoints, resume, reporting, DDP and the test split. In a spec file, the
same class is `trainable: examples.pipeline:SpiralPipeline` (run from the repository root).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

import hpo


class Spirals(torch.utils.data.Dataset):
    """Points on `classes` interleaved spiral arms, with Gaussian noise: (x, label) items."""

    def __init__(self, size: int, classes: int = 3, noise: float = 0.15, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        labels = torch.arange(size) % classes
        radius = torch.rand(size, generator=generator)
        angle = 4 * radius + labels * (2 * math.pi / classes)
        points = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
        self.x = points + noise * radius[:, None] * torch.randn(size, 2, generator=generator)
        self.targets = labels.tolist()  # hpo reads `targets` to stratify, where it splits

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], self.targets[i]


class SpiralNet(nn.Module):
    """An MLP on (x, y) and a few of their sines, which spirals need."""

    def __init__(self, classes: int, hidden: int, layers: int, frequencies: int = 4):
        super().__init__()
        self.frequencies = torch.arange(1, frequencies + 1) * math.pi
        width = 2 + 4 * frequencies
        blocks: list[nn.Module] = []
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = x[:, :, None] * self.frequencies.to(x.device)
        features = torch.cat([x, angles.sin().flatten(1), angles.cos().flatten(1)], dim=1)
        return self.net(features)


class SpiralPipeline(hpo.Pipeline):
    """Spirals and SpiralNet in hpo's loop; a smoothed training loss as extra state."""

    CLASSES = 3
    SMOOTHING = 0.7  # weight of the past in the smoothed training loss

    def setup_data(self) -> None:
        # Fixed data seeds: every trial sees the same points; the splits are separate draws.
        self.train_dataset = Spirals(1500, self.CLASSES, seed=1)
        self.val_dataset = Spirals(500, self.CLASSES, seed=2)
        self.test_dataset = Spirals(500, self.CLASSES, seed=3)

    def setup_model(self) -> None:
        model = self.config.model  # the spec's model section: hidden_size, num_layers
        self.model = SpiralNet(self.CLASSES, model.hidden_size, model.num_layers).to(self.device)
        self.smoothed_loss: float | None = None
        self.epochs_trained = 0

    def train_epoch(self, epoch: int) -> dict[str, float]:
        metrics = super().train_epoch(epoch)
        loss = metrics["train_loss"]
        if self.smoothed_loss is not None:
            loss = self.SMOOTHING * self.smoothed_loss + (1 - self.SMOOTHING) * loss
        self.smoothed_loss = loss
        self.epochs_trained += 1
        return {**metrics, "train_loss_smoothed": loss, "epochs_trained": self.epochs_trained}

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "spirals": {"smoothed_loss": self.smoothed_loss, "epochs_trained": self.epochs_trained},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.smoothed_loss = state["spirals"]["smoothed_loss"]
        self.epochs_trained = state["spirals"]["epochs_trained"]


SPEC = {
    "name": "spirals",
    "metric": "val_accuracy",
    "mode": "max",
    "model": {"hidden_size": 64, "num_layers": 2},
    "optimizer": {"name": "adamw", "lr": 3e-3},
    "loader": {"num_workers": 0},
    "training": {"epochs": 20, "batch_size": 64},
    "checkpoint": {"every": 5},
    "space": {
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
        "model.hidden_size": {"type": "categorical", "choices": [16, 32, 64]},
        "model.num_layers": {"type": "int", "low": 1, "high": 3},
    },
    "searcher": {"name": "optuna", "n_startup_trials": 4},
    "scheduler": {"name": "asha", "grace_period": 4, "reduction_factor": 2},
    "budget": {"num_samples": 8},
}


def main() -> None:
    experiment = hpo.tune(SpiralPipeline, SPEC)
    columns = ["number", "status", "iterations", "best.val_accuracy", "final.epochs_trained"]
    print(experiment.trials()[columns].to_string(index=False))


if __name__ == "__main__":
    main()
