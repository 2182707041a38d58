"""`Pipeline`: one trial's data, model, optimizer and epoch, in the shape of the PyTorch guide's
`TrainingPipeline`; hpo's own trainable is this class with nothing overridden.

A subclass overrides what it needs, usually `setup_data` and `setup_model`:

    class MyPipeline(hpo.Pipeline):
        def setup_data(self):
            self.train_dataset = MyImages(self.config.data.path, split="train")
            self.val_dataset = MyImages(self.config.data.path, split="val")

        def setup_model(self):
            self.model = MyNet(num_classes=10)

Everything else comes from the spec's sections: the loaders from `loader`, the optimizer, LR
schedule and loss from `optimizer`, `lr_scheduler` and `loss`, `train_epoch` with mixed
precision, gradient accumulation and clipping, `validate` with the `metrics`. hpo's loop
around it (`run`, `fit_epoch`) supplies the epochs, LR scheduling, early stopping, the
checkpoint's state (`state_dict`, which a subclass extends with its own), and the metrics
Ray Tune receives. It runs without Ray, in a DDP group, and in a notebook alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from hpo.trainable.config import FINAL_KEY, TrainableConfig, TrainingConfig
from hpo.trainable.data import Dataset, Task, dataset_task
from hpo.trainable.early_stopping import EarlyStopping
from hpo.trainable.finite import check_finite
from hpo.trainable.seeding import identity, seed_everything, trial_seed

_NON_FINITE_HINT = "; try a lower optimizer.lr or training.grad_clip_norm"

# Validation and test batches of in-memory data: no gradients are kept, so they can be large.
_EVAL_BATCH = 4096

_SPLITS = ("train", "val", "test")


class Pipeline:
    """One trial's training, validation and test, built from its config.

    Args:
        config: the trainable's config (validated here).
        dataset: the whole dataset of hpo's in-memory datasets, loaded once in the driver
            (None for data opened in the trial: image folders, your own data function).
        seed: overrides the trial's seed (`trial_seed(config)`), e.g. to compare two configs
            from the same initial weights and data order.

    Attributes set by the `setup_*` methods (a subclass sets those of the methods it
    overrides):
        train_loader, val_loader, test_loader: what the epochs iterate (batches are `(x, y)`
            or dicts; a dict's target is at `loader.target_key`). Or, instead of loaders,
        train_dataset, val_dataset, test_dataset: torch Datasets, loaded by the `loader`
            section's DataLoaders. The test split is optional.
        model: the `nn.Module` trained.
        optimizer, scheduler, criterion: the optimizer, the LR schedule (an hpo schedule or a
            torch LR scheduler) and the loss function `criterion(outputs, targets)`.
    """

    def __init__(
        self,
        config: TrainableConfig | dict[str, Any],
        dataset: Dataset | None = None,
        *,
        seed: int | None = None,
    ):
        self.config = TrainableConfig.model_validate(config)
        self.seed = trial_seed(self.config) if seed is None else seed
        seed_everything(self.seed)
        self.device = pick_device(self.config.training)
        self.autocast_dtype = pick_precision(self.config.training, self.device)
        self.rank, self.world = _process_group()
        self.epoch = 0
        # What the data says of itself; `setup_data` of hpo's datasets fills it in.
        self.task: Task = dataset_task(self.config.data)
        self.num_outputs: int | None = self.config.data.num_classes
        self.input_shape: tuple[int, ...] | None = None
        self.y_mean, self.y_std = 0.0, 1.0  # regression targets of in-memory data are scaled
        self._dataset = dataset
        for name in _SPLITS:
            setattr(self, f"{name}_loader", None)
            setattr(self, f"{name}_dataset", None)
        self.scheduler: Any = None

        self.setup_data()
        shape, augment = self.input_shape, self.config.augment
        if augment.max_shift and shape is not None and len(shape) != 3:
            raise ValueError(
                f"augment.max_shift needs image-shaped data, but {self.config.data.name!r} has "
                f"input shape {list(shape)}"
            )
        self._wrap_datasets()
        if self.train_loader is None or self.val_loader is None:
            raise ValueError(
                f"{type(self).__name__}.setup_data() must set train_loader and val_loader, "
                "or train_dataset and val_dataset"
            )
        self.setup_model()
        self.model = self.model.to(self.device)
        # In a DDP group (see `distributed.py`), each rank trains on its share of every batch
        # through `self.net`, which averages the gradients; `self.model` stays the plain module.
        self.net: nn.Module = self.model
        if self.world > 1:
            # On CUDA, the rank's own GPU: Ray Train's worker made it the current device.
            cuda = self.device.type == "cuda"
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[torch.cuda.current_device()] if cuda else None
            )
        self.setup_optimizer()
        self._lr_schedule = _as_schedule(self.scheduler)
        # Loss scaling is needed for fp16 only; a disabled scaler passes everything through.
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.autocast_dtype is torch.float16
        )
        stopping = self.config.early_stopping
        self.early_stopping = EarlyStopping(stopping.patience, stopping.min_delta, self.config.mode)
        # Its state goes into checkpoints: a resumed trial draws the same augmentations.
        self.augment_rng = torch.Generator(self.device).manual_seed(self.seed + 1)
        self._metrics = self._metric_set()
        self._model_cost: dict[str, float] | None = None

    # --- what a subclass overrides -------------------------------------------------------

    def setup_data(self) -> None:
        """Set `train_dataset`, `val_dataset` and `test_dataset` from the `data` section.

        hpo's in-memory datasets become tensors on the device, batched by index; image
        folders and your own data function are opened here, in the trial, and loaded by
        DataLoaders.
        """
        from hpo.trainable.datasets import open_data

        parts = open_data(self.config, self._dataset, device=self.device)
        self.task, self.input_shape = parts.task, parts.input_shape
        self.num_outputs = parts.num_outputs or self.num_outputs
        self.y_mean, self.y_std = parts.y_mean, parts.y_std
        self.train_dataset, self.val_dataset, self.test_dataset = parts.train, parts.val, parts.test

    def setup_model(self) -> None:
        """Set `model` from the `model` section, for this data's input shape and outputs."""
        from hpo.trainable.losses import output_size
        from hpo.trainable.models import build_model

        outputs = self.num_outputs
        if outputs is not None:  # binary cross-entropy on logits: one output, not two
            outputs = output_size(self.config.loss.name, self.task, outputs)
        self.model = build_model(self.config.model, self.input_shape, outputs)

    def setup_optimizer(self) -> None:
        """Set `optimizer`, `scheduler` and `criterion` from the `optimizer`, `lr_scheduler`
        and `loss` sections."""
        from hpo.trainable.losses import build_loss
        from hpo.trainable.optim import build_optimizer
        from hpo.trainable.schedules import Plan, build_lr_schedule

        cfg = self.config
        self.optimizer = build_optimizer(cfg.optimizer, self.model.parameters())
        steps = math.ceil(len(self.train_loader) / cfg.training.accumulate_batches)
        self.scheduler = build_lr_schedule(
            cfg.lr_scheduler, self.optimizer, Plan(cfg.training.epochs, steps, cfg.mode)
        )
        self.criterion = build_loss(cfg.loss, self.task, self.device)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch: `train_loss` (the mean over its samples) and `grad_norm` (the
        mean gradient norm of its optimizer steps, before clipping)."""
        model, optimizer, training = self.model, self.optimizer, self.config.training
        model.train()
        _set_epoch(self.train_loader, epoch)
        k = training.accumulate_batches
        total = torch.zeros((), device=self.device)
        norms: list[torch.Tensor] = []
        seen = 0
        optimizer.zero_grad(set_to_none=True)
        for group in _groups(self.train_loader, k):
            batches = [self._split(batch) for batch in group]
            weight = self._sample_weight(sum(len(target) for _, target in batches))
            for inputs, target in batches:
                inputs = self._augment(inputs)
                with self._autocast():
                    loss = self.criterion(self._forward(inputs, target, self.net), target)
                # Weighted by its share of the group, so k accumulated batches give the
                # gradient of one batch k times larger (the loss is a mean over samples).
                self.scaler.scale(loss * (len(target) * weight)).backward()
                total += loss.detach().float() * len(target)
                seen += len(target)
            self.scaler.unscale_(optimizer)  # clip and measure the true gradient
            norms.append(
                nn.utils.clip_grad_norm_(model.parameters(), training.grad_clip_norm or math.inf)
            )
            self.scaler.step(optimizer)
            self.scaler.update()
            optimizer.zero_grad(set_to_none=True)
            self._lr_schedule.after_step()
        if self.world > 1:  # the mean over every rank's samples, as one process would see it
            sums = torch.stack([total, torch.tensor(float(seen), device=self.device)])
            torch.distributed.all_reduce(sums)
            total, seen = sums[0], int(sums[1].item())
        if not seen:
            raise ValueError("the training split gave no batch; lower training.batch_size")
        grad_norm = torch.stack(norms).mean().item() if norms else 0.0
        return {"train_loss": (total / seen).item(), "grad_norm": grad_norm}

    def validate(self, epoch: int) -> dict[str, float]:
        """The validation split's `val_loss` and `val_<metric>` for each of the `metrics`."""
        return self.evaluate(self.val_loader, "val")

    # --- hpo's loop around it ------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.training.epochs or self.early_stopping.stopped

    def run(self) -> Iterator[dict[str, Any]]:
        """Train the remaining epochs, yielding each epoch's metrics.

        The last epoch's metrics carry `FINAL_KEY: True`, also when early stopping ends
        the trial; every other epoch's carry False.

        Raises:
            FloatingPointError: when the training loss, a validation loss or the spec's
                metric becomes NaN or infinite.
        """
        while not self.finished:
            yield self.fit_epoch()

    def fit_epoch(self) -> dict[str, Any]:
        """Train and validate one epoch, step the LR schedule and early stopping, and return
        the epoch's metrics (what the trial reports)."""
        started = time.perf_counter()
        self.epoch += 1
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch starts with
        trained = self.train_epoch(self.epoch)
        train_loss = trained["train_loss"]
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training loss became {train_loss} in epoch {self.epoch}{_NON_FINITE_HINT}"
            )
        metrics: dict[str, Any] = {
            "epoch": self.epoch,
            **trained,
            **self.validate(self.epoch),
            "lr": lr,
            **self.model_cost(),
        }
        metrics.setdefault("grad_norm", 0.0)
        # A NaN validation loss (or metric) with a finite training loss: the model's outputs
        # overflowed; the trial fails as it would on a NaN training loss.
        for watched in {self.config.metric, *self.config.objectives}:
            check_finite(metrics, watched, self.epoch, _NON_FINITE_HINT)
        if self.config.metric not in metrics:
            raise KeyError(
                f"epoch {self.epoch} reported no {self.config.metric!r} (the spec's metric); "
                f"it reported: {', '.join(metrics)}"
            )
        monitored = metrics[self.config.metric]
        self._lr_schedule.after_epoch(monitored)
        self.early_stopping.update(monitored)
        metrics["epoch_time_s"] = time.perf_counter() - started
        metrics[FINAL_KEY] = self.finished
        return metrics

    def model_cost(self) -> dict[str, float]:
        """`n_params`, `model_size_mb` and `inference_ms` (the median time of a forward pass
        over one validation batch, in eval mode, without gradients): what trade-offs against
        accuracy need. Measured once, after the first epoch, and reported with every epoch,
        so that a trial stopped early has them too (a model's cost does not change)."""
        if self._model_cost is None:
            from hpo.trainable import model_cost

            inputs, target = self._split(next(iter(self.val_loader)))

            def forward() -> Any:
                with self._autocast():
                    return self._forward(inputs, target)

            self._model_cost = {
                "n_params": model_cost.n_params(self.model),
                "model_size_mb": model_cost.model_size_mb(self.model),
                "inference_ms": model_cost.inference_ms(self.model, forward, self.device),
            }
        return self._model_cost

    @torch.inference_mode()
    def evaluate(self, loader: Any, prefix: str) -> dict[str, float]:
        """Loss and metrics of the model over `loader`, named `{prefix}_loss` etc."""
        self.model.eval()
        total = torch.zeros((), device=self.device)
        seen = 0
        for batch in loader:
            inputs, target = self._split(batch)
            with self._autocast():
                out = self._forward(inputs, target)
                total += self.criterion(out, target).float() * len(target)
            seen += len(target)
            out, target = out.float(), target
            if self.task is Task.REGRESSION:  # metrics in the target's own units
                out, target = self._unscale(out), self._unscale(target.float())
            self._metrics.update(out, target)
        if not seen:
            raise ValueError(f"the {prefix} split is empty")
        return {f"{prefix}_loss": (total / seen).item(), **self._metrics.compute(prefix)}

    def test(self) -> dict[str, float]:
        """The model's metrics on the held-out test split (`test_loss`, `test_accuracy`, ...).

        Raises:
            ValueError: there is no test split (`data.test_fraction` is 0).
        """
        if self.test_loader is None:
            raise ValueError("there is no test split; set data.test_fraction above 0")
        return self.evaluate(self.test_loader, "test")

    # --- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly here (see `checkpoint.py`).

        A subclass with state of its own adds it: `{**super().state_dict(), "ema": ...}`,
        and reads it back in `load_state_dict`.
        """
        return {
            "config": self._identity(),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self._lr_schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "early_stopping": self.early_stopping.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
                "augment": self.augment_rng.get_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict()` of a pipeline with the same config.

        Raises:
            ValueError: the state was saved by a trial with another config.
        """
        if state["config"] != self._identity():
            raise ValueError("the checkpoint was saved by a trial with another config")
        self.epoch = int(state["epoch"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._lr_schedule.load_state_dict(state["lr_scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.early_stopping.load_state_dict(state["early_stopping"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.augment_rng.set_state(rng["augment"])

    # --- the parts ------------------------------------------------------------------------

    def _identity(self) -> str:
        """What a checkpoint must have been trained with to be continued here."""
        return identity(self.config)

    def _wrap_datasets(self) -> None:
        """Loaders for the splits that `setup_data` gave as datasets."""
        from hpo.trainable.datasets import TensorPair
        from hpo.trainable.loaders import make_loader

        training = self.config.training
        for name in _SPLITS:
            dataset = getattr(self, f"{name}_dataset")
            if getattr(self, f"{name}_loader") is not None or dataset is None:
                continue
            train = name == "train"
            in_memory = isinstance(dataset, TensorPair)
            batch_size = training.batch_size if train or not in_memory else _EVAL_BATCH
            # Every rank validates on the whole split: rank 0's metrics are the trial's.
            rank, world = (self.rank, self.world) if train else (0, 1)
            loader = make_loader(
                dataset,
                self.config.loader,
                batch_size,
                train=train,
                seed=self.seed,
                device=self.device,
                rank=rank,
                world=world,
            )
            setattr(self, f"{name}_loader", loader)

    def _sample_weight(self, group_size: int) -> float:
        """What one sample of this rank's accumulation group weighs in its optimizer step.

        Alone, 1 / its size. In a DDP group, which averages the ranks' gradients, `world` /
        the size of the group's samples over every rank: ranks with one sample more or less
        of an uneven batch still give the gradient one process would compute.
        """
        if self.world == 1:
            return 1.0 / group_size
        size = torch.tensor(float(group_size), device=self.device)
        torch.distributed.all_reduce(size)
        return self.world / size.item()

    def _metric_set(self) -> Any:
        from hpo.trainable.metrics import MetricSet

        classes = self.num_outputs if self.task is Task.CLASSIFICATION else None
        return MetricSet(
            self.config.metrics,
            self.task,
            self.device,
            num_classes=classes,
            loss_name=self.config.loss.name,
        )

    def _split(self, batch: Any) -> tuple[Any, torch.Tensor]:
        from hpo.trainable.loaders import split_batch

        return split_batch(batch, self.config.loader.target_key, self.device)

    def _forward(self, inputs: Any, target: torch.Tensor, net: nn.Module | None = None) -> Any:
        net = net or self.model
        if isinstance(inputs, dict):  # text models take input_ids=, attention_mask=, ...
            out = net(**inputs)
        else:
            shape = self.input_shape
            if shape and len(shape) > 1 and inputs.dim() == 2:  # in-memory rows are flat
                inputs = inputs.view(len(inputs), *shape)
            out = net(inputs)
        # A regression model's one output per sample, against a target of one number each.
        if target.dim() == 1 and out.dim() == 2 and out.shape[1] == 1:
            out = out.view(len(out))
        return out

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        )

    def _augment(self, inputs: Any) -> Any:
        augment = self.config.augment
        if not (augment.max_shift or augment.noise_std) or not isinstance(inputs, torch.Tensor):
            return inputs
        x = inputs
        if augment.max_shift:
            shape = self.input_shape or tuple(x.shape[1:])
            if len(shape) != 3:
                raise ValueError(
                    f"augment.max_shift needs image-shaped data, but {self.config.data.name!r} "
                    f"has input shape {list(shape)}"
                )
            x = _shift(x.view(len(x), *shape), augment.max_shift, self.augment_rng)
            x = x.reshape(inputs.shape)
        if augment.noise_std:
            noise = torch.randn(x.shape, generator=self.augment_rng, device=x.device)
            x = x + augment.noise_std * noise
        return x

    def _unscale(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.y_std + self.y_mean


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


def is_pipeline(obj: Any) -> bool:
    """Whether `obj` is `Pipeline` or a subclass of it (what `trainable:` may name)."""
    return isinstance(obj, type) and issubclass(obj, Pipeline)


class _TorchSchedule:
    """A torch LR scheduler that a subclass's `setup_optimizer` set, stepped as torch's docs
    step it: per optimizer step for the cyclic ones, on the metric for plateau, else per
    epoch."""

    _PER_STEP = ("OneCycleLR", "CyclicLR")

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler
        self.per_step = type(scheduler).__name__ in self._PER_STEP
        self.on_metric = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def after_step(self) -> None:
        if self.per_step:
            self.scheduler.step()

    def after_epoch(self, monitored: float) -> None:
        if self.on_metric:
            self.scheduler.step(monitored)
        elif not self.per_step:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


def _as_schedule(scheduler: Any) -> Any:
    """hpo's LR schedule, whatever `setup_optimizer` set: hpo's own, torch's, or none."""
    from hpo.trainable.schedules import LRSchedule

    if scheduler is None:
        return LRSchedule()
    if isinstance(scheduler, LRSchedule):
        return scheduler
    return _TorchSchedule(scheduler)


def _set_epoch(loader: Any, epoch: int) -> None:
    """Tell a loader (or its sampler, a DistributedSampler in a user's own loader) the epoch,
    so that its order is that epoch's and a resumed trial sees the same one."""
    for target in (loader, getattr(loader, "sampler", None)):
        set_epoch = getattr(target, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
            return


def _groups(loader: Any, k: int) -> Iterator[list[Any]]:
    """The loader's batches, `k` at a time (the last group may be shorter)."""
    group: list[Any] = []
    for batch in loader:
        group.append(batch)
        if len(group) == k:
            yield group
            group = []
    if group:
        yield group


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
