"""The training and validation loops of one trial, independent of Ray.

`Trainer` builds everything one config needs (splits, model, optimizer, LR schedule, mixed
precision, early stopping) and runs epoch after epoch; `fit` is the one function that
trains one config in plain Python. Both yield one dict of metrics per epoch; whoever drives
them (Ray Tune's trainable, a test, a notebook) decides what to do with them, and may stop
after any epoch. `Trainer.state_dict()` after an epoch is everything needed to continue
exactly where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from hpo.trainable.config import EVERY_KEY, FINAL_KEY, TrainableConfig, TrainingConfig
from hpo.trainable.data import Dataset, Task, split
from hpo.trainable.early_stopping import EarlyStopping
from hpo.trainable.finite import check_finite
from hpo.trainable.metrics import classification_metrics, regression_metrics
from hpo.trainable.models import build_model
from hpo.trainable.optim import build_optimizer
from hpo.trainable.schedules import Plan, build_lr_schedule

# Sections that do not change how a trial trains, so they do not change its seed either:
# checkpointing or stopping early must not change the epochs a trial does run.
_NOT_SEEDED = {"checkpoint", "early_stopping", "metric", "mode"}

_NON_FINITE_HINT = "; try a lower optimizer.lr or training.grad_clip_norm"

# Validation and test batches: no gradients are kept, so they can be much larger.
_EVAL_BATCH = 4096


def trial_seed(config: TrainableConfig) -> int:
    """A trial's seed, from the experiment's seed and the trial's config.

    The same config trains the same way, in any process; two configs of one experiment
    get independent seeds.
    """
    text = json.dumps(
        config.model_dump(mode="json", exclude=_NOT_SEEDED, context=EVERY_KEY), sort_keys=True
    )
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (user models may use any)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(training: TrainingConfig) -> torch.device:
    """CUDA when present (for `auto`), else the CPU."""
    if training.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("training.device is 'cuda', but torch sees no CUDA device")
    wanted = training.device
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(wanted)


def pick_precision(training: TrainingConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision.

    `auto` is bf16 on CUDA devices that support it (no loss scaling needed), fp16 on older
    CUDA devices, and fp32 on the CPU, where autocast rarely pays off for small models.
    """
    precision = training.precision
    cuda = device.type == "cuda"
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if precision == "fp16" and not cuda:
        raise ValueError("training.precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise ValueError("training.precision bf16 is not supported by this GPU; use fp16")
    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


class Trainer:
    """Everything one config trains with, and its epoch loop.

    Args:
        config: the trainable's config (validated here).
        dataset: the whole dataset; split here with the experiment's seed.
        seed: overrides the trial's seed (`trial_seed(config)`), e.g. to compare two configs
            from the same initial weights and data order.
    """

    def __init__(
        self, config: TrainableConfig | dict[str, Any], dataset: Dataset, *, seed: int | None = None
    ):
        cfg = self.cfg = TrainableConfig.model_validate(config)
        data = cfg.data
        self.task = dataset.task
        self.input_shape = dataset.input_shape
        if cfg.augment.max_shift and len(self.input_shape) != 3:
            raise ValueError(
                f"augment.max_shift needs image-shaped data, but {data.name!r} has input shape "
                f"{list(self.input_shape)}"
            )
        self.seed = trial_seed(cfg) if seed is None else seed
        seed_everything(self.seed)
        self.device = pick_device(cfg.training)
        self.autocast_dtype = pick_precision(cfg.training, self.device)

        splits = split(
            dataset,
            data.val_fraction,
            cfg.seed,
            test_fraction=data.test_fraction,
            standardize=data.standardize,
        )
        self.y_mean, self.y_std = splits.y_mean, splits.y_std
        # Small tabular data lives on the device whole: batches are index lookups, with no
        # DataLoader and no per-row collation.
        self.x_train, self.y_train = self._tensors(splits.x_train, splits.y_train)
        self.x_val, self.y_val = self._tensors(splits.x_val, splits.y_val)
        self.x_test, self.y_test = (
            self._tensors(splits.x_test, splits.y_test)
            if splits.x_test is not None
            else (None, None)
        )

        self.model = build_model(cfg.model, self.input_shape, dataset.num_outputs).to(self.device)
        # In a DDP group (see `distributed.py`), each rank trains on its share of every batch
        # through `self.net`, which averages the gradients; `self.model` stays the plain module.
        self.rank, self.world = _process_group()
        self.net: nn.Module = self.model
        if self.world > 1:
            # On CUDA, the rank's own GPU: Ray Train's worker made it the current device.
            cuda = self.device.type == "cuda"
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[torch.cuda.current_device()] if cuda else None
            )
        self.optimizer = build_optimizer(cfg.optimizer, self.model.parameters())
        batches = len(self._batches(torch.arange(len(self.x_train))))
        self.lr_schedule = build_lr_schedule(
            cfg.lr_scheduler,
            self.optimizer,
            Plan(
                cfg.training.epochs,
                math.ceil(batches / cfg.training.accumulate_batches),
                cfg.mode,
            ),
        )
        # Loss scaling is needed for fp16 only; a disabled scaler passes everything through.
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.autocast_dtype is torch.float16
        )
        self.early_stopping = EarlyStopping(
            cfg.early_stopping.patience, cfg.early_stopping.min_delta, cfg.mode
        )
        self.loss_fn: nn.Module = (
            nn.CrossEntropyLoss() if self.task is Task.CLASSIFICATION else nn.MSELoss()
        )
        # Own generators for data order and augmentation: their states go into checkpoints,
        # so a resumed trial sees the same batches as one that never stopped.
        self.order_rng = torch.Generator().manual_seed(self.seed)
        self.augment_rng = torch.Generator(self.device).manual_seed(self.seed + 1)
        self.epoch = 0

    # --- the loop ------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.epoch >= self.cfg.training.epochs or self.early_stopping.stopped

    def run(self) -> Iterator[dict[str, Any]]:
        """Train the remaining epochs, yielding each epoch's metrics.

        The last epoch's metrics carry `FINAL_KEY: True`, also when early stopping ends
        the trial; every other epoch's carry False.

        Raises:
            FloatingPointError: when the training loss, a validation loss or the spec's
                metric becomes NaN or infinite.
        """
        while not self.finished:
            yield self.train_epoch()

    def train_epoch(self) -> dict[str, Any]:
        """Train and validate one epoch, and return its metrics."""
        started = time.perf_counter()
        self.epoch += 1
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch starts with
        train_loss, grad_norm = self._train_one_epoch()
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training loss became {train_loss} in epoch {self.epoch}{_NON_FINITE_HINT}"
            )
        metrics: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": train_loss,
            **self.evaluate(self.x_val, self.y_val, "val"),
            "lr": lr,
            "grad_norm": grad_norm,
        }
        # A NaN validation loss (or metric) with a finite training loss: the model's outputs
        # overflowed; the trial fails as it would on a NaN training loss.
        check_finite(metrics, self.cfg.metric, self.epoch, _NON_FINITE_HINT)
        monitored = metrics[self.cfg.metric]
        self.lr_schedule.after_epoch(monitored)
        self.early_stopping.update(monitored)
        metrics["epoch_time_s"] = time.perf_counter() - started
        metrics[FINAL_KEY] = self.finished
        return metrics

    def _batches(self, order: torch.Tensor) -> list[torch.Tensor]:
        batches = list(order.split(self.cfg.training.batch_size))
        # A last batch of one sample adds noise, and batch norm cannot train on it; in a DDP
        # group, every rank needs a share of it.
        if len(batches) > 1 and len(batches[-1]) < max(2, self.world):
            batches.pop()
        return batches

    def _train_one_epoch(self) -> tuple[float, float]:
        model, optimizer, training = self.model, self.optimizer, self.cfg.training
        model.train()
        order = torch.randperm(len(self.x_train), generator=self.order_rng).to(self.device)
        batches = self._batches(order)
        k = training.accumulate_batches
        total = torch.zeros((), device=self.device)
        norms: list[torch.Tensor] = []
        seen = 0
        optimizer.zero_grad(set_to_none=True)
        for start in range(0, len(batches), k):
            group = batches[start : start + k]
            group_size = sum(len(idx) for idx in group)
            for idx in group:
                idx = idx[self.rank :: self.world]  # this rank's share (all of it alone)
                x, y = self._augment(self.x_train[idx]), self.y_train[idx]
                with self._autocast():
                    loss = self.loss_fn(self._forward(x, self.net), y)
                # Weighted by its share of the group, so k accumulated batches give the
                # gradient of one batch k times larger (the loss is a mean over samples); DDP
                # divides the ranks' summed gradients by their number, hence `* self.world`.
                self.scaler.scale(loss * (len(idx) * self.world / group_size)).backward()
                total += loss.detach().float() * len(idx)
                seen += len(idx)
            self.scaler.unscale_(optimizer)  # clip and measure the true gradient
            norms.append(
                nn.utils.clip_grad_norm_(model.parameters(), training.grad_clip_norm or math.inf)
            )
            self.scaler.step(optimizer)
            self.scaler.update()
            optimizer.zero_grad(set_to_none=True)
            self.lr_schedule.after_step()
        if self.world > 1:  # the mean over every rank's samples, as one process would see it
            sums = torch.stack([total, torch.tensor(float(seen), device=self.device)])
            torch.distributed.all_reduce(sums)
            total, seen = sums[0], int(sums[1].item())
        return (total / seen).item(), torch.stack(norms).mean().item()

    def _forward(self, x: torch.Tensor, net: nn.Module | None = None) -> torch.Tensor:
        out = (net or self.model)(x.view(len(x), *self.input_shape))
        return out if self.task is Task.CLASSIFICATION else out.view(len(x))

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        )

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        augment = self.cfg.augment
        if augment.max_shift:
            x = _shift(x.view(len(x), *self.input_shape), augment.max_shift, self.augment_rng)
            x = x.reshape(len(x), -1)
        if augment.noise_std:
            noise = torch.randn(x.shape, generator=self.augment_rng, device=x.device)
            x = x + augment.noise_std * noise
        return x

    @torch.inference_mode()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, prefix: str) -> dict[str, float]:
        """Loss and task metrics of the model on `(x, y)`, named `{prefix}_loss` etc."""
        self.model.eval()
        total = torch.zeros((), device=self.device)
        outputs = []
        for start in range(0, len(x), _EVAL_BATCH):
            xb, yb = x[start : start + _EVAL_BATCH], y[start : start + _EVAL_BATCH]
            with self._autocast():
                out = self._forward(xb)
                total += self.loss_fn(out, yb).float() * len(xb)
            outputs.append(out.float())
        out = torch.cat(outputs)
        metrics = {f"{prefix}_loss": (total / len(x)).item()}
        y_true = y.cpu().numpy()
        if self.task is Task.CLASSIFICATION:
            metrics |= classification_metrics(y_true, out.argmax(dim=1).cpu().numpy(), prefix)
        else:  # in the target's own units
            unscale = lambda v: v * self.y_std + self.y_mean  # noqa: E731
            metrics |= regression_metrics(unscale(y_true), unscale(out.cpu().numpy()), prefix)
        return metrics

    def test(self) -> dict[str, float]:
        """The model's metrics on the held-out test split (`test_loss`, `test_accuracy`, ...).

        Raises:
            ValueError: the config has no test split (`data.test_fraction` is 0).
        """
        if self.x_test is None:
            raise ValueError("there is no test split; set data.test_fraction above 0")
        return self.evaluate(self.x_test, self.y_test, "test")

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)

    # --- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly here (see `checkpoint.py`)."""
        return {
            "config": json.dumps(
                self.cfg.model_dump(mode="json", exclude=_NOT_SEEDED, context=EVERY_KEY),
                sort_keys=True,
            ),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "early_stopping": self.early_stopping.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
                "order": self.order_rng.get_state(),
                "augment": self.augment_rng.get_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict()` of a trainer with the same config.

        Raises:
            ValueError: the state was saved by a trainer with another config.
        """
        mine = json.dumps(
            self.cfg.model_dump(mode="json", exclude=_NOT_SEEDED, context=EVERY_KEY), sort_keys=True
        )
        if state["config"] != mine:
            raise ValueError("the checkpoint was saved by a trial with another config")
        self.epoch = int(state["epoch"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_schedule.load_state_dict(state["lr_scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.early_stopping.load_state_dict(state["early_stopping"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.order_rng.set_state(rng["order"])
        self.augment_rng.set_state(rng["augment"])


def _process_group() -> tuple[int, int]:
    """This process's rank and the group's size in torch.distributed, or (0, 1) alone."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by its own random offset of up to `max_shift` pixels each way.

    Edges are extended (replicate padding), so an image's background fills the gap.
    """
    n, _, height, width = images.shape
    s = max_shift
    padded = nn.functional.pad(images, (s, s, s, s), mode="replicate")
    dy, dx = torch.randint(-s, s + 1, (2, n), generator=generator, device=images.device)
    rows = torch.arange(height, device=images.device) + s - dy[:, None]  # (n, height)
    cols = torch.arange(width, device=images.device) + s - dx[:, None]  # (n, width)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def fit(
    config: TrainableConfig | dict[str, Any],
    dataset: Dataset,
    *,
    state: dict[str, Any] | None = None,
    seed: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Train the configured model on `dataset`, yielding the metrics of every epoch.

    Args:
        config: the trainable's config.
        dataset: the whole dataset (split here).
        state: a `Trainer.state_dict()` (e.g. from `load_checkpoint`) to continue from.
        seed: overrides the trial's seed derived from the config.

    Raises:
        FloatingPointError: when the training loss becomes NaN or infinite.
    """
    trainer = Trainer(config, dataset, seed=seed)
    if state is not None:
        trainer.load_state_dict(state)
    yield from trainer.run()
