"""The training and validation loops of one trial, independent of Ray.

`fit` yields one dict of metrics per epoch; whoever drives it (Ray Tune's trainable, a
test, a notebook) decides what to do with them, and may stop after any epoch.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from hpo.trainable.config import FINAL_KEY, OptimizerConfig, TrainableConfig
from hpo.trainable.data import Dataset, Task, split
from hpo.trainable.models import build_model


def trial_seed(config: TrainableConfig) -> int:
    """A seed per configuration: the same config trains the same way, in any process."""
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def build_optimizer(cfg: OptimizerConfig, params: Any) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _loader(
    x: np.ndarray, y: np.ndarray, batch_size: int, generator: torch.Generator | None
) -> DataLoader:
    # Batches are gathered by index tensors in one step instead of collating single rows:
    # the data is already in memory, and per-row collation would dominate small models.
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    order = RandomSampler(data, generator=generator) if generator else SequentialSampler(data)
    return DataLoader(
        data, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None
    )


def fit(config: TrainableConfig | dict[str, Any], dataset: Dataset) -> Iterator[dict[str, Any]]:
    """Train the configured model on `dataset`, yielding the metrics of every epoch.

    Raises:
        FloatingPointError: when the training loss becomes NaN or infinite.
    """
    cfg = TrainableConfig.model_validate(config)
    splits = split(dataset, cfg.data.val_fraction, cfg.seed)
    generator = torch.Generator().manual_seed(trial_seed(cfg))
    torch.manual_seed(trial_seed(cfg))

    model = build_model(cfg.model, splits.x_train.shape[1], dataset.num_outputs)
    optimizer = build_optimizer(cfg.optimizer, model.parameters())
    classification = dataset.task is Task.CLASSIFICATION
    loss_fn: nn.Module = nn.CrossEntropyLoss() if classification else nn.MSELoss()
    train = _loader(splits.x_train, splits.y_train, cfg.training.batch_size, generator)
    val = _loader(splits.x_val, splits.y_val, max(cfg.training.batch_size, 1024), None)

    for epoch in range(1, cfg.training.epochs + 1):
        started = time.perf_counter()
        train_loss = _train_epoch(model, train, optimizer, loss_fn, classification)
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"training loss became {train_loss} in epoch {epoch}")
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            **_evaluate(model, val, loss_fn, classification),
        }
        metrics["epoch_time_s"] = time.perf_counter() - started
        metrics[FINAL_KEY] = epoch == cfg.training.epochs
        yield metrics


def _train_epoch(model, loader, optimizer, loss_fn, classification: bool) -> float:
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        loss = loss_fn(out, y if classification else y.view_as(out))
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
    return total / count


@torch.no_grad()
def _evaluate(model, loader, loss_fn, classification: bool) -> dict[str, float]:
    model.eval()
    total, correct, count = 0.0, 0, 0
    for x, y in loader:
        out = model(x)
        total += loss_fn(out, y if classification else y.view_as(out)).item() * len(y)
        if classification:
            correct += (out.argmax(dim=1) == y).sum().item()
        count += len(y)
    metrics = {"val_loss": total / count}
    if classification:
        metrics["val_accuracy"] = correct / count
    return metrics
