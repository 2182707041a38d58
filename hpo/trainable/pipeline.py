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

import contextlib
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from hpo.trainable.config import FINAL_KEY, TrainableConfig, TrainingConfig
from hpo.trainable.data import Dataset, Task, dataset_task
from hpo.trainable.determinism import set_determinism
from hpo.trainable.early_stopping import EarlyStopping
from hpo.trainable.finite import check_finite
from hpo.trainable.gradients import clip_and_measure, non_finite_gradient, skipped_step
from hpo.trainable.memory import PeakMemory, TrialOutOfMemory, is_out_of_memory, release_memory
from hpo.trainable.seeding import (
    host_rng_state,
    identity,
    seed_everything,
    set_host_rng_state,
    trial_seed,
)

if TYPE_CHECKING:
    from hpo.trainable.diagnostics import Predictions

_NON_FINITE_HINT = "; try a lower optimizer.lr or training.grad_clip_norm"

# What torch's anomaly mode says of the backward op that made a NaN ("Function
# 'LogBackward0' returned nan values in its 0th output."); a test checks that it still does.
_ANOMALY = "returned nan values"

# Validation and test batches of in-memory data: no gradients are kept, so they can be large.
_EVAL_BATCH = 4096

_SPLITS = ("train", "val", "test")

# `training.on_oom: split` halves the micro-batches' size at most this many times (8 pieces).
_MAX_SPLITS = 3


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
        class_names: the names of classes 0..k-1 in the test evaluation (optional).
        optimizer, scheduler, criterion: the optimizer, the LR schedule (an hpo schedule, a
            torch LR scheduler, or any object with a `step` method, called with what its
            signature takes: nothing, the metric or the epoch) and the loss function
            `criterion(outputs, targets)`.
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
        # Before anything runs on the device: cuBLAS reads its workspace setting once.
        set_determinism(self.config.training.deterministic, self.device)
        # From here on: the data and model it loads count towards the trial's peak.
        self.peak_memory = PeakMemory(self.device)
        # Pieces each training batch is cut into; `training.on_oom: split` doubles it.
        self.micro_batches = 1
        self._step_in_epoch = 0
        self._largest_step = 0  # samples in this epoch's largest optimizer step
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
        # The names of classes 0..k-1 in the test evaluation's report; a subclass may set
        # them in `setup_data` (else `data.class_names`, then the dataset's `classes`).
        self.class_names: list[str] | None = None

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
        self.amp_skipped_steps = 0  # the trial's optimizer steps the scaler skipped, so far
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
        self.optimizer = build_optimizer(cfg.optimizer, self.model)
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
        for step, group in enumerate(_groups(self.train_loader, k), 1):
            batches = [self._split(batch) for batch in group]
            total += self.backward_step(batches)
            seen += sum(len(target) for _, target in batches)
            self.scaler.unscale_(optimizer)  # clip and measure the true gradient
            norm = self._checked_gradient_norm(epoch, step)
            if self._scaled_step():
                norms.append(norm)
            optimizer.zero_grad(set_to_none=True)
            self._lr_schedule.after_step()
        if self.world > 1:  # the mean over every rank's samples, as one process would see it
            sums = torch.stack([total, torch.tensor(float(seen), device=self.device)])
            torch.distributed.all_reduce(sums)
            total, seen = sums[0], int(sums[1].item())
        if not seen:
            raise ValueError("the training split gave no batch; lower training.batch_size")
        grad_norm = torch.stack(norms).mean().item() if norms else 0.0
        trained = {"train_loss": (total / seen).item(), "grad_norm": grad_norm}
        if self.scaler.is_enabled():
            trained["amp_skipped_steps"] = self.amp_skipped_steps
        return trained

    def validate(self, epoch: int) -> dict[str, float]:
        """The validation split's `val_loss` and `val_<metric>` for each of the `metrics`."""
        return self.evaluate(self.val_loader, "val")

    def detections(self, outputs: Any) -> list[dict[str, torch.Tensor]]:
        """Detection (`data.task: detection`): what the model found in each image of a batch,
        from its outputs in evaluation, as `{boxes, scores, labels}` dicts, one per image.

        A detector whose outputs are raw maps (heatmaps, box sizes) decodes them here; the
        loss is computed on the raw outputs. This default takes outputs that already are
        such a list.

        Raises:
            TypeError: the outputs are not a list of dicts; override this method.
        """
        if isinstance(outputs, list | tuple) and all(isinstance(o, dict) for o in outputs):
            return list(outputs)
        raise TypeError(
            f"the model's outputs are a {type(outputs).__name__}, not one dict of boxes, scores "
            f"and labels per image; override {type(self).__name__}.detections(outputs) to "
            "decode them"
        )

    def backward_step(self, batches: list[tuple[Any, torch.Tensor]]) -> torch.Tensor:
        """Forward and backward passes of one optimizer step's batches (`(inputs, target)`
        pairs); returns the sum of their samples' losses.

        Each batch is cut into `micro_batches` pieces. When the step runs out of memory, its
        gradients are dropped and, with `training.on_oom: split`, it is done again with twice
        the pieces (up to 8), each weighted by its share: the optimizer step sees the
        gradient of the whole batch, which stays the size the searcher chose.

        Raises:
            TrialOutOfMemory: out of memory with `on_oom: fail`, or in 8 pieces too.
        """
        self._step_in_epoch += 1
        samples = sum(len(target) for _, target in batches)
        self._largest_step = max(self._largest_step, samples)
        weight = self._sample_weight(samples)
        # Not in a DDP group: a rank that split alone would leave the others' all-reduce waiting.
        split = self.config.training.on_oom == "split" and self.world == 1
        augment_state = self.augment_rng.get_state() if split else None
        while True:
            try:
                return self._accumulate(batches, weight)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                failed = _first_line(exc)
            # Outside the handler the failed pass's tensors are free (its traceback is gone).
            self.optimizer.zero_grad(set_to_none=True)
            release_memory(self.device)
            largest = max(len(target) for _, target in batches)
            if not split or self.micro_batches >= 2**_MAX_SPLITS:
                hint = (
                    f"; even {self.micro_batches} micro-batches did not fit: lower "
                    "training.batch_size or the model's size"
                    if split
                    else "; lower training.batch_size, or set training.on_oom: split to train "
                    "each batch in micro-batches"
                )
                raise self._out_of_memory(failed, largest, hint)
            self.micro_batches *= 2
            if augment_state is not None:  # the same augmentations as the failed pass drew
                self.augment_rng.set_state(augment_state)

    def _accumulate(self, batches: list[tuple[Any, torch.Tensor]], weight: float) -> torch.Tensor:
        total = torch.zeros((), device=self.device)
        for inputs, target in batches:
            # Augmented whole, so its micro-batches see what the whole batch would have.
            inputs = self._augment(inputs)
            for piece_inputs, piece_target in _pieces(inputs, target, self.micro_batches):
                with self._autocast():
                    loss = self.criterion(
                        self._forward(piece_inputs, piece_target, self.net), piece_target
                    )
                # Weighted by its share of the group, so k accumulated batches (or pieces)
                # give the gradient of one batch k times larger (the loss is a sample mean).
                self.scaler.scale(loss * (len(piece_target) * weight)).backward()
                total += loss.detach().float() * len(piece_target)
        return total

    def _memory_metrics(self) -> dict[str, float]:
        """The trial's peak memory so far and how its batches were cut, reported each epoch."""
        metrics = {
            "peak_memory_mb": self.peak_memory.peak_mb(),
            "micro_batches": self.micro_batches,
        }
        if self._largest_step:  # measured where hpo's train_epoch ran
            metrics["effective_batch_size"] = self._largest_step * self.world
        return metrics

    def _out_of_memory(self, failed: str, batch_size: int, hint: str) -> TrialOutOfMemory:
        """The trial's out-of-memory error: where, with which batch, at which peak."""
        peak = self.peak_memory.peak_mb()
        where = f"epoch {self.epoch}" + (
            f", step {self._step_in_epoch}" if self._step_in_epoch else ""
        )
        pieces = self.micro_batches
        cut = (
            f" in {pieces} micro-batches of up to {math.ceil(batch_size / pieces)}"
            if pieces > 1
            else ""
        )
        return TrialOutOfMemory(
            f"out of memory in {where} with batch size {batch_size}{cut}, peak memory "
            f"{peak:.1f} MB on {self.device.type} ({failed}){hint}",
            batch_size=batch_size,
            micro_batches=pieces,
            peak_memory_mb=peak,
        )

    # --- hpo's loop around it ------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.training.epochs or self.early_stopping.stopped

    def run(self) -> Iterator[dict[str, Any]]:
        """Train the remaining epochs, yielding each epoch's metrics.

        The last epoch's metrics carry `FINAL_KEY: True`, also when early stopping ends
        the trial; every other epoch's carry False.

        Raises:
            FloatingPointError: when the gradient norm (without a loss scaler), the training
                loss, a validation loss or the spec's metric becomes NaN or infinite.
        """
        while not self.finished:
            failed = None
            try:
                metrics = self.fit_epoch()
            except TrialOutOfMemory:
                raise
            except Exception as exc:  # out of memory outside the training step: validation,
                if not is_out_of_memory(exc):  # or a subclass's own train_epoch
                    raise
                failed = _first_line(exc)
            if failed is None:
                yield metrics
                continue
            # Here, where no exception is handled, nothing holds the failed step's tensors.
            release_memory(self.device)
            raise self._out_of_memory(failed, self.config.training.batch_size, "")

    def fit_epoch(self) -> dict[str, Any]:
        """Train and validate one epoch, step the LR schedule and early stopping, and return
        the epoch's metrics (what the trial reports)."""
        started = time.perf_counter()
        self.epoch += 1
        self._step_in_epoch = self._largest_step = 0
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch starts with
        with _anomaly_named(self.config.training.detect_anomaly, self.epoch):
            trained = self.train_epoch(self.epoch)
        train_loss = trained["train_loss"]
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training loss became {train_loss} in epoch {self.epoch}{_NON_FINITE_HINT}"
            )
        # Its workers' seeds too follow the epoch: random eval transforms repeat on a resume.
        _set_epoch(self.val_loader, self.epoch)
        metrics: dict[str, Any] = {
            "epoch": self.epoch,
            **trained,
            **self.validate(self.epoch),
            "lr": lr,
            **self.model_cost(),
        }
        metrics.setdefault("grad_norm", 0.0)
        metrics.update(self._memory_metrics())
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

            # A DataLoader's iterator draws its workers' seed from torch's generator, and a
            # Dataset may draw from Python's and numpy's: the measurement must move none, or
            # a resumed trial (measuring after another epoch) would train with other random
            # numbers than an uninterrupted one.
            cuda = [self.device] if self.device.type == "cuda" else []
            host = host_rng_state()
            with torch.random.fork_rng(devices=cuda):
                inputs, target = self._split(next(iter(self.val_loader)))

                def forward() -> Any:
                    with self._autocast():
                        return self._forward(inputs, target)

                self._model_cost = {
                    "n_params": model_cost.n_params(self.model),
                    "model_size_mb": model_cost.model_size_mb(self.model),
                    "inference_ms": model_cost.inference_ms(self.model, forward, self.device),
                }
            set_host_rng_state(host)
        return self._model_cost

    @torch.inference_mode()
    def evaluate(
        self, loader: Any, prefix: str, predictions: Predictions | None = None
    ) -> dict[str, float]:
        """Loss and metrics of the model over `loader`, named `{prefix}_loss` etc.

        Args:
            loader: the batches to evaluate.
            prefix: `val`, `test`, ...
            predictions: where to gather the model's decisions too, for the confusion matrix
                or the residuals of the best model's evaluation (`hpo.trainable.diagnostics`).
        """
        self.model.eval()
        total = torch.zeros((), device=self.device)
        seen = 0
        for batch in loader:
            inputs, target = self._split(batch)
            with self._autocast():
                out = self._forward(inputs, target)
                total += self.criterion(out, target).float() * len(target)
            seen += len(target)
            if self.task is Task.DETECTION:  # boxes per image: no tensor to cast or unscale
                self._metrics.update(self.detections(out), target)
                continue
            out, target = out.float(), target
            if self.task is Task.REGRESSION:  # metrics in the target's own units
                out, target = self._unscale(out), self._unscale(target.float())
            self._metrics.update(out, target)
            if predictions is not None:
                predictions.update(out, target)
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
            "amp_skipped_steps": self.amp_skipped_steps,
            "early_stopping": self.early_stopping.state_dict(),
            # A trial that had to split its batches resumes split, not out of memory again.
            "micro_batches": self.micro_batches,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
                "augment": self.augment_rng.get_state(),
                **host_rng_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any], *, cloned: bool = False) -> None:
        """Continue from a `state_dict()` of a pipeline with the same config.

        Args:
            cloned: the state is another trial's, which PBT clones into this one: its weights,
                its optimizer's state and its epoch are taken, and this config's optimizer
                hyperparameters kept (the learning rate where the LR schedule has brought
                the other's, scaled to this one's).

        Raises:
            ValueError: the state was saved by a trial with another config (and not cloned).
        """
        if not cloned and state["config"] != self._identity():
            raise ValueError("the checkpoint was saved by a trial with another config")
        own = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        self.epoch = int(state["epoch"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._lr_schedule.load_state_dict(state["lr_scheduler"])
        if cloned:
            _keep_hyperparameters(self.optimizer, own, self._lr_schedule)
        self.scaler.load_state_dict(state["scaler"])
        self.amp_skipped_steps = int(state.get("amp_skipped_steps", 0))  # older checkpoints
        self.early_stopping.load_state_dict(state["early_stopping"])
        self.micro_batches = int(state.get("micro_batches", 1))  # checkpoints from before: 1
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.augment_rng.set_state(rng["augment"])
        if "numpy" in rng:  # checkpoints of earlier releases hold torch's states only
            set_host_rng_state(rng)

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
                collate=self._default_collate(),
            )
            setattr(self, f"{name}_loader", loader)

    def _default_collate(self) -> Any:
        """Detection items hold a different number of boxes each: their targets are listed,
        not stacked (`loader.collate` still overrides it)."""
        if self.task is not Task.DETECTION:
            return None
        from hpo.trainable.detection import collate

        return collate
    def _checked_gradient_norm(self, epoch: int, step: int) -> torch.Tensor:
        """The step's gradient norm (before clipping to `training.grad_clip_norm`).

        Raises:
            FloatingPointError: it is NaN or infinite without a loss scaler (which would skip
                the step), naming the first parameter whose gradient is, the epoch and step.
        """
        norm, finite = clip_and_measure(
            self.model.parameters(), self.config.training.grad_clip_norm
        )
        if not finite and not self.scaler.is_enabled():
            raise non_finite_gradient(self.model, norm.item(), epoch, step)
        return norm

    def _scaled_step(self) -> bool:
        """Step the optimizer through the loss scaler; False when the scaler skipped the step
        for infinite gradients (counted in `amp_skipped_steps`)."""
        if not self.scaler.is_enabled():
            self.optimizer.step()
            return True
        before = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if skipped_step(before, self.scaler.get_scale()):
            self.amp_skipped_steps += 1
            return False
        return True

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
        if (
            isinstance(target, torch.Tensor)
            and isinstance(out, torch.Tensor)
            and target.dim() == 1
            and out.dim() == 2
            and out.shape[1] == 1
        ):
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
    step it: per optimizer step for the cyclic ones, on the metric for plateau (and any whose
    `step` takes the metric, told by its signature), else per epoch."""

    _PER_STEP = ("OneCycleLR", "CyclicLR")

    def __init__(self, scheduler: Any):
        from hpo.trainable.imported import StepTakes, step_takes

        self.scheduler = scheduler
        self.per_step = type(scheduler).__name__ in self._PER_STEP
        self.on_metric = step_takes(type(scheduler)) is StepTakes.METRIC

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


def _keep_hyperparameters(optimizer: Any, own: list[dict[str, Any]], schedule: Any) -> None:
    """After loading another trial's optimizer state: this trial's hyperparameters again.

    The learning rate keeps the other's progress along the LR schedule: it is this trial's
    base rate times the factor the schedule had reached (torch's schedulers keep the base
    rate as `initial_lr` in each group and as their `base_lrs`).
    """
    scheduler = getattr(schedule, "scheduler", None)
    for group, mine in zip(optimizer.param_groups, own, strict=True):
        base = group.get("initial_lr") or group["lr"]
        factor = group["lr"] / base if base else 1.0
        group.update(mine)
        group["lr"] = mine.get("initial_lr", mine["lr"]) * factor
    if scheduler is not None and hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [g.get("initial_lr", g["lr"]) for g in own]


def _as_schedule(scheduler: Any) -> Any:
    """hpo's LR schedule, whatever `setup_optimizer` set: hpo's own, torch's, another class
    with a `step` (the guide's `WarmupCosineScheduler`), or none."""
    from hpo.trainable.imported import step_takes
    from hpo.trainable.schedules import ImportedSchedule, LRSchedule

    if scheduler is None:
        return LRSchedule()
    if isinstance(scheduler, LRSchedule):
        return scheduler
    torch_schedulers = torch.optim.lr_scheduler
    if isinstance(scheduler, (torch_schedulers.LRScheduler, torch_schedulers.ReduceLROnPlateau)):
        return _TorchSchedule(scheduler)
    # Not torch's: stepped per epoch with what its `step` takes; its state is its own
    # `state_dict()` or its plain attributes.
    return ImportedSchedule(scheduler, per_step=False, takes=step_takes(type(scheduler)))


@contextlib.contextmanager
def _anomaly_named(enabled: bool, epoch: int) -> Iterator[None]:
    """`torch.autograd.detect_anomaly` around an epoch's training, when `enabled`.

    Its error (the backward op that returned NaN) becomes a `FloatingPointError` with the
    epoch: a configuration's fault, as any NaN is, not one that fail-fast counts.
    """
    if not enabled:
        yield
        return
    with torch.autograd.detect_anomaly(check_nan=True):
        try:
            yield
        except RuntimeError as error:
            if _ANOMALY not in str(error):
                raise
            raise FloatingPointError(
                f"autograd's anomaly mode found a NaN in epoch {epoch}: {error}"
            ) from error


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


def _pieces(inputs: Any, target: torch.Tensor, n: int) -> list[tuple[Any, torch.Tensor]]:
    """A batch cut into `n` micro-batches along its first dimension (fewer for a small one);
    dict inputs (text models' `input_ids=`, ...) are cut key by key."""
    if n == 1:
        return [(inputs, target)]
    size = math.ceil(len(target) / n)
    targets = target.split(size)
    if isinstance(inputs, dict):
        cut = {key: value.split(size) for key, value in inputs.items()}
        parts: list[Any] = [{key: value[i] for key, value in cut.items()} for i in range(len(targets))]
    else:
        parts = list(inputs.split(size))
    return list(zip(parts, targets, strict=True))


def _first_line(exc: BaseException) -> str:
    """`Type: message` of an exception, its first line only (CUDA's runs on for lines)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


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
