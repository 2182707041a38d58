"""`hpo check`: the PyTorch guide's debugging tips and pitfalls, run on a trial's Pipeline in
seconds, before a search spends its budget on a bug.

Each check is a small function of one built Pipeline that returns a `CheckResult`: the
data (batches, labels, split sizes, leaks between splits, shuffling), the model (output
shape, initial loss, softmax before cross-entropy), one batch overfitted, the gradients,
the modes of `train_epoch` and `validate`, the speed of loading against training, and the
memory of one training step. `run_checks` builds each config's Pipeline once, in this
process (no Ray, nothing written), restores its state before every check, and reports a
check that raises as that check's failure, naming the user's frame, then goes on.
"""

from __future__ import annotations

import copy
import math
import resource
import sys
import sysconfig
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, Subset

from hpo.trainable.data import Dataset, Task
from hpo.trainable.pipeline import Pipeline

__all__ = ["OVERFIT_STEPS", "CheckReport", "CheckResult", "run_checks"]

OVERFIT_STEPS = 100
# The one-batch test's optimizer: Adam at a fixed rate, high enough that a sound model fits a
# batch well within the steps. It asks whether the model, loss and data can fit at all, not
# whether a searched rate is good (a rate of 1e-4 from the space would fail a sound model).
OVERFIT_LR = 1e-2
_OVERFIT_EVERY = 10
# A per-process CUDA context that max_memory_allocated does not count, for "trials per GPU".
CUDA_CONTEXT_BYTES = 512 * 2**20
_SPEED_SECONDS = 0.2  # how long each side of the speed check measures (at most)
_SPEED_BATCHES = 20


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one config.

    Attributes:
        name: what was checked (`data: labels`, `gradients`, ...).
        ok: whether it passed (True for a skipped check).
        reason: one line: what was found.
        fix: what to do about it ("" when it passed).
        details: the numbers behind the reason (shapes, losses, rates), JSON-ready.
        config: which config it ran on (`base`, `sample 1`, ...).
        skipped: the check did not apply (the reason says why).
    """

    name: str
    ok: bool
    reason: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    config: str = "base"
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "name": self.name,
            "ok": self.ok,
            "skipped": self.skipped,
            "reason": self.reason,
            "fix": self.fix,
            "details": self.details,
        }


@dataclass
class CheckReport:
    """Every check's result, config by config (`hpo.check` returns one).

    Attributes:
        results: the results, in the order they ran.
        configs: each config's label and the searched values it sets (empty for the base).
    """

    results: list[CheckResult]
    configs: dict[str, dict[str, Any]]

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [result for result in self.results if not result.ok]

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)


class _Seen(Exception):
    """Raised from a forward hook once the first forward pass is observed, to stop there."""


@dataclass
class _Context:
    """One config's Pipeline, its state to restore before each check, and what checks share."""

    pipeline: Pipeline
    snapshot: dict[str, Any]
    largest_batch_size: int
    first: dict[str, tuple[Any, torch.Tensor] | None] = field(default_factory=dict)

    def restore(self) -> None:
        self.pipeline.load_state_dict(copy.deepcopy(self.snapshot))

    def batch(self, split: str = "train") -> tuple[Any, torch.Tensor]:
        """The split's first batch, as (inputs, target) on the device (loaded once)."""
        if split not in self.first:
            loader = getattr(self.pipeline, f"{split}_loader")
            self.first[split] = None if loader is None else _first_batch(self.pipeline, loader)
        found = self.first[split]
        if found is None:
            raise ValueError(f"the {split} split yields no batch")
        return found


Check = Callable[[_Context], "CheckResult | list[CheckResult]"]


def run_checks(
    pipeline_class: type[Pipeline],
    configs: Sequence[tuple[str, dict[str, Any]]],
    dataset: Dataset | None = None,
    *,
    largest_batch_size: int | None = None,
    threads: int | None = None,
    progress: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Build each config's Pipeline once and run every check on it.

    The data checks run on the first config, and again on a later one only when its data,
    loader, transforms or batch size differ.

    Args:
        pipeline_class: hpo's `Pipeline`, or the user's subclass of it.
        configs: (label, the trainable's config) pairs, the base config first.
        dataset: hpo's in-memory dataset, loaded once (None: each Pipeline opens its data).
        largest_batch_size: the memory check's batch size (default: each config's own).
        threads: torch's CPU threads while the checks run (a trial's `resources.cpu`, as
            Ray gives a trial; None: torch's default), set back afterwards.
        progress: called with each result as it comes.

    Returns:
        Every result, in order. A check that raises is a failed result naming the
        exception and the user's frame; a Pipeline that cannot be built is one failed
        `pipeline: build` result for its config.
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    try:
        return _run_all(pipeline_class, configs, dataset, largest_batch_size, progress)
    finally:
        torch.set_num_threads(before)


def _run_all(
    pipeline_class: type[Pipeline],
    configs: Sequence[tuple[str, dict[str, Any]]],
    dataset: Dataset | None,
    largest_batch_size: int | None,
    progress: Callable[[CheckResult], None] | None,
) -> list[CheckResult]:
    results: list[CheckResult] = []

    def add(result: CheckResult, label: str) -> None:
        result = _labelled(result, label)
        results.append(result)
        if progress is not None:
            progress(result)

    data_seen: list[Any] = []
    for label, config in configs:
        try:
            pipeline = pipeline_class(config, dataset)
        except Exception as exc:  # the user's setup_* raised: that is the finding
            add(_raised("pipeline: build", exc), label)
            continue
        batch_size = pipeline.config.training.batch_size
        context = _Context(
            pipeline,
            copy.deepcopy(pipeline.state_dict()),
            max(largest_batch_size or batch_size, batch_size),
        )
        cfg = pipeline.config
        data_key = (cfg.data, cfg.loader, cfg.transforms)
        checks: list[tuple[str, Check]] = []
        if data_key not in data_seen:
            data_seen.append(data_key)
            checks += DATA_CHECKS
        checks += MODEL_CHECKS
        for name, check in checks:
            try:
                context.restore()
                outcome = check(context)
            except Exception as exc:
                outcome = _raised(name, exc)
            for result in outcome if isinstance(outcome, list) else [outcome]:
                add(result, label)
    return results


# --- data ----------------------------------------------------------------------------------


def check_batches(ctx: _Context) -> CheckResult:
    """Each split yields a batch; its shapes and dtypes are shown."""
    shown: dict[str, str] = {}
    for split in ("train", "val", "test"):
        if getattr(ctx.pipeline, f"{split}_loader") is None:
            continue
        if ctx.batch(split) is None:
            raise ValueError(f"the {split} split yields no batch")
        inputs, target = ctx.batch(split)
        shown[split] = f"x {_describe(inputs)}, y {_describe(target)}"
    return CheckResult(
        "data: batches", True, "; ".join(f"{k} {v}" for k, v in shown.items()), details=shown
    )


def check_labels(ctx: _Context) -> CheckResult:
    """Classification labels are within [0, C)."""
    p = ctx.pipeline
    name = "data: labels"
    if p.task is not Task.CLASSIFICATION:
        return _skip(name, "not a classification task")
    classes = p.num_outputs
    if classes is None:
        return _skip(name, "the number of classes is unknown (the dataset has no labels to count)")
    found: dict[str, list[int]] = {}
    partial = []
    for split in ("train", "val", "test"):
        loader = getattr(p, f"{split}_loader")
        if loader is None:
            continue
        labels = _all_labels(getattr(p, f"{split}_dataset"))
        if labels is None:  # no label attribute: the first batch is what can be read cheaply
            labels = ctx.batch(split)[1]
            partial.append(split)
        if labels.dtype.is_floating_point or labels.dim() != 1:
            return _skip(name, f"the {split} targets are not class indices ({_describe(labels)})")
        found[split] = [int(labels.min()), int(labels.max())]
    bad = {s: r for s, r in found.items() if r[0] < 0 or r[1] >= classes}
    details = {"classes": classes, "ranges": found, "first_batch_only": partial}
    if bad:
        split, (low, high) = next(iter(bad.items()))
        return CheckResult(
            name,
            False,
            f"the {split} labels run from {low} to {high}, outside [0, {classes})",
            f"labels must be 0..{classes - 1}: map them so, or set data.num_classes",
            details,
        )
    where = f" (first batch of {', '.join(partial)})" if partial else ""
    return CheckResult(name, True, f"within [0, {classes}) in every split{where}", details=details)


def check_split_sizes(ctx: _Context) -> CheckResult:
    """The size of each split."""
    sizes = {}
    for split in ("train", "val", "test"):
        loader = getattr(ctx.pipeline, f"{split}_loader")
        if loader is None:
            continue
        dataset = getattr(ctx.pipeline, f"{split}_dataset")
        if dataset is None:
            dataset = getattr(loader, "dataset", None)
        sizes[split] = len(dataset) if dataset is not None else f"{len(loader)} batches"
    empty = [split for split, n in sizes.items() if n == 0]
    reason = ", ".join(f"{split} {n}" for split, n in sizes.items())
    if empty:
        return CheckResult(
            "data: split sizes", False, f"empty: {', '.join(empty)} ({reason})",
            "give every split samples (data.val_fraction, data.test_fraction)", sizes,
        )  # fmt: skip
    return CheckResult("data: split sizes", True, reason, details=sizes)


def check_leaks(ctx: _Context) -> CheckResult:
    """No item is in two splits, where the datasets expose ids or file paths."""
    name = "data: no item in two splits"
    keys: dict[str, list[str]] = {}
    for split in ("train", "val", "test"):
        loader = getattr(ctx.pipeline, f"{split}_loader")
        dataset = getattr(ctx.pipeline, f"{split}_dataset")
        if dataset is None and loader is not None:
            dataset = getattr(loader, "dataset", None)
        if dataset is None:
            continue
        found = _item_keys(dataset)
        if found is None:
            return _skip(name, f"the {split} data exposes no ids or file paths to compare")
        keys[split] = found
    splits = list(keys)
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            shared = sorted(set(keys[a]) & set(keys[b]))
            if shared:
                more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
                return CheckResult(
                    name,
                    False,
                    f"{len(shared)} items are in both {a} and {b}: {', '.join(shared[:3])}{more}",
                    f"split the data so that each item is in one split (a {b} split that "
                    "shares items with train measures memory, not generalisation)",
                    {"shared": {f"{a}/{b}": len(shared)}},
                )
    counted = ", ".join(f"{s} {len(k)}" for s, k in keys.items())
    return CheckResult(name, True, f"no shared ids or paths ({counted})")


def check_shuffle(ctx: _Context) -> CheckResult:
    """The training loader shuffles."""
    name = "data: training order shuffled"
    loader = ctx.pipeline.train_loader
    shuffles = _shuffles(loader)
    if shuffles is None:  # a loader we cannot read: compare two epochs' first batches
        first = _first_batch(ctx.pipeline, loader, epoch=1)
        second = _first_batch(ctx.pipeline, loader, epoch=2)
        shuffles = first is None or second is None or not _same(first[1], second[1])
    if shuffles:
        return CheckResult(name, True, "the training loader shuffles")
    return CheckResult(
        name,
        False,
        "the training loader gives the samples in the same order every epoch",
        "shuffle the training set: DataLoader(..., shuffle=True), or set train_dataset and "
        "let hpo make the loader",
    )


# --- model -----------------------------------------------------------------------------------


def check_output_shape(ctx: _Context) -> CheckResult:
    """The output has one value per class (or target) for every sample."""
    p = ctx.pipeline
    inputs, target = ctx.batch()
    out = _outputs(p, inputs, target, train=False)
    n = len(target)
    details = {"output": list(out.shape), "target": list(target.shape)}
    if _class_indices(target) and p.task is Task.CLASSIFICATION and _cross_entropy(p):
        classes = p.num_outputs
        expected = [n, classes] if classes is not None else None
        if out.dim() != 2 or out.shape[0] != n or (expected and list(out.shape) != expected):
            want = f"[{n}, {classes}]" if classes else f"[{n}, classes]"
            got = out.shape[1] if out.dim() == 2 else list(out.shape)
            return CheckResult(
                "model: output shape",
                False,
                f"the model gives {got} outputs per sample, but the data has {classes} classes "
                f"(output {list(out.shape)}, expected {want})",
                f"give the last layer {classes} outputs (hpo passes num_classes= to a model "
                "that asks for it)",
                details,
            )
        return CheckResult(
            "model: output shape", True, f"{list(out.shape)} for {classes} classes", details=details
        )
    if p.task is not Task.REGRESSION and not _binary_cross_entropy(p):
        return _skip("model: output shape", f"{list(out.shape)} for a loss hpo does not know")
    if out.shape != target.shape:  # `_forward` gave one output per sample its target's shape
        return CheckResult(
            "model: output shape",
            False,
            f"the model's output {list(out.shape)} does not match the targets {list(target.shape)}",
            "give the last layer one output per target",
            details,
        )
    return CheckResult(
        "model: output shape", True, f"{list(out.shape)} for targets {list(target.shape)}",
        details=details,
    )  # fmt: skip


def check_initial_loss(ctx: _Context) -> CheckResult:
    """For cross-entropy, the loss at initialisation is near ln C."""
    p = ctx.pipeline
    name = "model: initial loss"
    inputs, target = ctx.batch()
    with torch.no_grad():
        loss = _loss(p, inputs, target, train=False)
    value = float(loss)
    classes = _classes(p, target)
    if classes is None:
        return _skip(name, f"{value:.4g} (not a cross-entropy loss: no expected value)")
    expected = math.log(classes)
    details = {"loss": value, "expected": expected, "classes": classes}
    if not math.isfinite(value):
        return CheckResult(
            name, False, f"the loss at initialisation is {value}",
            "look for a log of 0 or a division by 0 in the model or loss", details,
        )  # fmt: skip
    if value > max(2 * expected, expected + 1):
        return CheckResult(
            name,
            False,
            f"{value:.3f} at initialisation, far above ln {classes} = {expected:.3f}: the "
            "initial outputs are large and confident",
            "initialise the last layer with small weights (or scale its inputs); check the "
            "inputs are standardised",
            details,
        )
    return CheckResult(
        name, True, f"{value:.3f}, near ln {classes} = {expected:.3f}", details=details
    )


def check_softmax(ctx: _Context) -> CheckResult:
    """Outputs that already sum to 1 along the class dimension mean softmax before
    CrossEntropyLoss."""
    p = ctx.pipeline
    name = "model: logits, not probabilities"
    inputs, target = ctx.batch()
    if not (_cross_entropy(p) and _class_indices(target)):
        return _skip(name, "not a cross-entropy loss")
    out = _outputs(p, inputs, target, train=False).float()
    if out.dim() != 2 or out.shape[1] < 2:
        return _skip(name, f"outputs of shape {list(out.shape)} have no class dimension")
    sums = out.sum(dim=1)
    if bool((out >= 0).all()) and bool(((sums - 1).abs() < 1e-3).all()):
        return CheckResult(
            name,
            False,
            "the outputs already sum to 1 along the class dimension: a softmax before "
            "CrossEntropyLoss, which applies log-softmax itself (it trains, badly)",
            "return the logits from forward() (remove the last softmax); apply softmax only "
            "to read probabilities",
            {"row_sums": [float(s) for s in sums[:4]]},
        )
    return CheckResult(name, True, "the outputs are logits (they do not sum to 1)")


def check_overfit(ctx: _Context) -> CheckResult:
    """Up to 100 steps on one batch bring the loss below 10% of its start or the accuracy on
    it to 100% (the guide's `overfit_single_batch`); it stops once they have."""
    p = ctx.pipeline
    name = "one batch overfits"
    inputs, target = ctx.batch()
    params = [q for q in p.model.parameters() if q.requires_grad]
    if not params:
        return CheckResult(name, False, "the model has no parameter that requires a gradient",
                           "unfreeze the parameters to train (requires_grad=True)")  # fmt: skip
    with torch.no_grad():
        start = float(_loss(p, inputs, target, train=False))
    optimizer = torch.optim.Adam(params, lr=OVERFIT_LR)
    steps = 0
    while True:
        with torch.no_grad():
            out = _outputs(p, inputs, target, train=False)
            end = float(_criterion(p, out, target))
        accuracy = _accuracy(p, out, target)
        fitted = math.isfinite(end) and (end < 0.1 * start or accuracy == 1.0)
        if fitted or steps >= OVERFIT_STEPS or not math.isfinite(end):
            break
        # Up to the next look (every 10 steps): a model that fits sooner is done sooner.
        for _ in range(min(_OVERFIT_EVERY, OVERFIT_STEPS - steps)):
            optimizer.zero_grad(set_to_none=True)
            loss = _loss(p, inputs, target, train=True)
            p.scaler.scale(loss).backward()
            p.scaler.step(optimizer)
            p.scaler.update()
            steps += 1
    details = {"start": start, "end": end, "steps": steps, "accuracy": accuracy}
    curve = f"loss {start:.4g} -> {end:.4g} in {steps} steps"
    acc = f", accuracy {accuracy:.0%}" if accuracy is not None else ""
    ratio = end / start if start > 0 else math.nan
    if fitted:
        return CheckResult(name, True, f"{curve} ({ratio:.0%} of its start){acc}", details=details)
    flat = out.float().reshape(len(out), -1)
    if len(out) > 1 and bool((flat - flat[:1]).abs().max() <= 1e-6 * (1 + flat.abs().max())):
        return CheckResult(
            name,
            False,
            f"the model's output ignores its input: every sample gets the same output, even "
            f"after {OVERFIT_STEPS} steps on one batch ({curve}{acc})",
            "make forward() compute its output from its input (look for a constant, a "
            "detached tensor or an unused argument)",
            details,
        )
    return CheckResult(
        name,
        False,
        f"the model cannot overfit one batch, which a working model does: {curve} "
        f"({ratio:.0%} of its start, the aim is below 10%){acc}",
        "look for a bug in the model or loss (a missing activation, a wrong target, a "
        "frozen or detached layer); a model that cannot learn one batch cannot learn the data",
        details,
    )


def check_gradients(ctx: _Context) -> CheckResult:
    """Every parameter that requires a gradient gets a finite one; the gradient norm."""
    p = ctx.pipeline
    name = "gradients"
    inputs, target = ctx.batch()
    p.model.train()
    p.optimizer.zero_grad(set_to_none=True)
    for q in p.model.parameters():
        q.grad = None
    # Unscaled: fp16's first loss scale would overflow into infinities the scaler skips.
    loss = _loss(p, inputs, target, train=True)
    loss.backward()
    named = list(p.model.named_parameters())
    trained = [(n, q) for n, q in named if q.requires_grad]
    frozen = [n for n, q in named if not q.requires_grad]
    none = [n for n, q in trained if q.grad is None]
    bad = [n for n, q in trained if q.grad is not None and not bool(torch.isfinite(q.grad).all())]
    in_optimizer = {id(q) for group in p.optimizer.param_groups for q in group["params"]}
    untrained = [n for n, q in trained if id(q) not in in_optimizer]
    grads = [q.grad.detach().float() for _, q in trained if q.grad is not None]
    norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))) if grads else 0.0
    details = {
        "grad_norm": norm,
        "no_gradient": none,
        "non_finite": bad,
        "frozen": frozen,
        "not_in_optimizer": untrained,
    }
    if bad:
        return CheckResult(
            name, False, f"NaN or infinite gradients in {_names(bad)} (loss {float(loss):.4g})",
            "look for a log of 0, a division by 0 or an overflow in forward(); lower "
            "optimizer.lr or set training.grad_clip_norm", details,
        )  # fmt: skip
    if none:
        return CheckResult(
            name,
            False,
            f"{len(none)} parameters get no gradient: {_names(none)} (a layer not used in "
            "forward(), or detached from the loss)",
            "use the layer in forward() or delete it; to freeze it on purpose, set "
            "requires_grad=False",
            details,
        )
    if untrained:
        return CheckResult(
            name, False, f"{len(untrained)} parameters are in no optimizer group: {_names(untrained)}",
            "pass every parameter to train to the optimizer in setup_optimizer()", details,
        )  # fmt: skip
    note = f"; frozen (requires_grad=False): {_names(frozen)}" if frozen else ""
    return CheckResult(
        name,
        True,
        f"every parameter gets a finite gradient; norm {norm:.4g}{note}",
        details=details,
    )


def check_modes(ctx: _Context) -> CheckResult:
    """`train_epoch` runs the model in train mode with gradients, `validate` in eval mode
    without; the model and the batch are on one device (the guide's first two pitfalls)."""
    p = ctx.pipeline
    name = "modes and devices"
    train = _first_forward(p, lambda: p.train_epoch(1))
    p.model.train()  # where an epoch of training leaves it: validate must switch
    val = _first_forward(p, lambda: p.validate(1))
    problems, fixes = [], []
    for step, seen, want in (("train_epoch", train, True), ("validate", val, False)):
        if seen is None:
            continue
        if seen["training"] != want:
            mode = "train" if seen["training"] else "eval"
            problems.append(f"{step} runs the model in {mode} mode")
            fixes.append("call self.model.eval() in validate()" if not want else
                         "call self.model.train() in train_epoch()")  # fmt: skip
        elif not want and seen["any_training"]:
            problems.append(
                f"{step} leaves submodules in train mode: {_names(seen['any_training'])}"
            )
            fixes.append("call self.model.eval() on the whole model in validate()")
        if seen["grad"] != want:
            problems.append(f"{step} runs {'without' if not seen['grad'] else 'with'} gradients")
            fixes.append(
                "wrap validation in torch.no_grad() (or torch.inference_mode())"
                if not want
                else "do not train under torch.no_grad()"
            )
        if len(seen["devices"]) > 1:
            problems.append(
                f"in {step}, the model and the batch are on {', '.join(seen['devices'])}"
            )
            fixes.append(f"move the batch to the model's device ({p.device}) before forward()")
    details = {"train_epoch": train, "validate": val}
    if problems:
        return CheckResult(name, False, "; ".join(problems), "; ".join(fixes), details)
    if train is None and val is None:
        return _skip(name, "neither train_epoch nor validate calls the model")
    devices = sorted({d for seen in (train, val) if seen for d in seen["devices"]})
    return CheckResult(
        name,
        True,
        f"train_epoch in train mode with gradients, validate in eval mode without; on "
        f"{', '.join(devices)}",
        details=details,
    )


def check_speed(ctx: _Context) -> CheckResult:
    """Loader batches per second against training steps per second (the guide's
    `num_workers` tip): data loading is named as the bottleneck when it is the slower."""
    from hpo.trainable.loaders import TensorBatches

    p = ctx.pipeline
    name = "speed: loading vs training"
    inputs, target = ctx.batch()
    _train_step(p, inputs, target)  # the first step pays for lazy initialisation
    step_s = _median_time(lambda: _train_step(p, inputs, target), p.device)
    step_rate = 1 / step_s
    workers = p.config.loader.num_workers
    if isinstance(p.train_loader, TensorBatches):
        return CheckResult(
            name, True,
            f"in-memory data is batched by index lookups on the device; training takes "
            f"{step_rate:,.0f} steps/s", details={"train_steps_per_s": step_rate},
        )  # fmt: skip
    started = time.perf_counter()
    iterator = iter(p.train_loader)
    if next(iterator, None) is None:
        raise ValueError("the training split yields no batch")
    first_s = time.perf_counter() - started  # worker start-up, paid each epoch unless persistent
    load_s = _median_time(lambda: next(iterator), None, stop=StopIteration)
    load_rate = 1 / load_s if load_s else math.inf
    details = {
        "loader_batches_per_s": load_rate,
        "train_steps_per_s": step_rate,
        "first_batch_s": first_s,
        "num_workers": workers,
    }
    line = (
        f"the loader gives {load_rate:,.0f} batches/s (first after {first_s:.2f} s), "
        f"training takes {step_rate:,.0f} steps/s"
    )
    if load_rate < step_rate:
        return CheckResult(
            name,
            False,
            f"data loading is the bottleneck: {line}",
            f"raise loader.num_workers (now {workers}; resources.cpu to match), set "
            "loader.persistent_workers, or make the Dataset's __getitem__ cheaper",
            details,
        )
    return CheckResult(name, True, line, details=details)


def _median_time(
    call: Callable[[], Any], device: torch.device | None, stop: type[Exception] | None = None
) -> float:
    """The median seconds of `call`, over up to _SPEED_BATCHES calls in about _SPEED_SECONDS
    (the median: a machine that other processes share preempts some calls)."""
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < _SPEED_BATCHES and time.perf_counter() - began < _SPEED_SECONDS:
        started = time.perf_counter()
        try:
            call()
        except Exception as exc:
            if stop is not None and isinstance(exc, stop):
                break
            raise
        if device is not None:
            _sync(device)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2] if times else 0.0


def check_memory(ctx: _Context) -> CheckResult:
    """Peak memory of one training step at the space's largest batch size, and how many
    such trials fit on one GPU."""
    p = ctx.pipeline
    name = "memory: one training step"
    inputs, target = _batch_of(ctx, ctx.largest_batch_size)
    n = len(target)
    cuda = p.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(p.device)
        torch.cuda.reset_peak_memory_stats(p.device)
        _train_step(p, inputs, target)
        torch.cuda.synchronize(p.device)
        peak = torch.cuda.max_memory_allocated(p.device)
        total = torch.cuda.get_device_properties(p.device).total_memory
        fits = int(total // (peak + CUDA_CONTEXT_BYTES))
        details = {"batch_size": n, "peak_bytes": peak, "gpu_bytes": total, "trials_per_gpu": fits}
        return CheckResult(
            name,
            fits >= 1,
            f"{_mib(peak)} allocated at batch size {n} (CUDA max_memory_allocated); about "
            f"{fits} such trials fit on one {_gib(total)} GPU (resources.gpu: "
            f"{1 / max(fits, 1):.2g})",
            "" if fits >= 1 else "lower training.batch_size or the model's size",
            details,
        )
    growth, how = _rss_growth(lambda: _train_step(p, inputs, target))
    details = {"batch_size": n, "peak_bytes": growth, "measured_by": how}
    return CheckResult(
        name, True, f"peak RSS grows by {_mib(growth)} at batch size {n} (CPU, {how})",
        details=details,
    )  # fmt: skip


DATA_CHECKS: list[tuple[str, Check]] = [
    ("data: batches", check_batches),
    ("data: labels", check_labels),
    ("data: split sizes", check_split_sizes),
    ("data: no item in two splits", check_leaks),
    ("data: training order shuffled", check_shuffle),
]
MODEL_CHECKS: list[tuple[str, Check]] = [
    ("model: output shape", check_output_shape),
    ("model: initial loss", check_initial_loss),
    ("model: logits, not probabilities", check_softmax),
    ("one batch overfits", check_overfit),
    ("gradients", check_gradients),
    ("modes and devices", check_modes),
    ("speed: loading vs training", check_speed),
    ("memory: one training step", check_memory),
]


# --- helpers ---------------------------------------------------------------------------------


def _labelled(result: CheckResult, label: str) -> CheckResult:
    return CheckResult(
        result.name, result.ok, result.reason, result.fix, result.details, label, result.skipped
    )


def _skip(name: str, reason: str) -> CheckResult:
    return CheckResult(name, True, f"not checked: {reason}", skipped=True)


def _raised(name: str, exc: BaseException) -> CheckResult:
    """A check that raised: the exception and the innermost frame of the user's code."""
    frame = _user_frame(exc)
    where = f" at {frame.filename}:{frame.lineno} in {frame.name}" if frame else ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return CheckResult(
        name,
        False,
        f"raised {type(exc).__name__}: {message}{where}",
        "fix the error at that line" if frame else "see the error above",
        {
            "exception": type(exc).__name__,
            "message": str(exc),
            "frame": None if frame is None else f"{frame.filename}:{frame.lineno}",
            "line": None if frame is None else frame.line,
        },
    )


def _user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame outside hpo, installed packages and the standard library."""
    ours = str(Path(__file__).resolve().parent.parent)
    theirs = {
        str(Path(p).resolve())
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_paths().get(key))
    }
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        path = str(Path(frame.filename).resolve())
        if frame.filename.startswith("<") or path.startswith(ours):
            continue
        if any(path.startswith(t) for t in theirs) or "site-packages" in path:
            continue
        return frame
    return None


def _first_batch(p: Pipeline, loader: Any, epoch: int = 1) -> tuple[Any, torch.Tensor] | None:
    set_epoch = getattr(loader, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)
    for batch in loader:
        return p._split(batch)
    return None


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')} {list(value.shape)}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in value.items()) + "}"
    return type(value).__name__


def _unwrap(dataset: Any) -> tuple[Any, list[int] | None]:
    """The dataset under hpo's wrappers (Subset, Transformed), and the indices into it."""
    indices: list[int] | None = None
    while True:
        if isinstance(dataset, Subset):
            chosen = list(dataset.indices)
            indices = chosen if indices is None else [chosen[i] for i in indices]
            dataset = dataset.dataset
        elif type(dataset).__name__ == "Transformed" and hasattr(dataset, "dataset"):
            dataset = dataset.dataset
        else:
            return dataset, indices


def _all_labels(dataset: Any) -> torch.Tensor | None:
    """Every label of a split, read without loading items (None: the dataset has none)."""
    from hpo.trainable.datasets import TensorPair

    if isinstance(dataset, TensorPair):
        return dataset.y
    if dataset is None:
        return None
    base, indices = _unwrap(dataset)
    for attribute in ("targets", "labels"):
        labels = getattr(base, attribute, None)
        if labels is not None and not callable(labels):
            tensor = torch.as_tensor(labels)
            return tensor if indices is None else tensor[indices]
    return None


_KEY_ATTRIBUTES = ("samples", "files", "paths", "ids", "file_paths", "image_paths", "filenames")


def _item_keys(dataset: Any) -> list[str] | None:
    base, indices = _unwrap(dataset)
    for attribute in _KEY_ATTRIBUTES:
        items = getattr(base, attribute, None)
        if items is None or callable(items) or not hasattr(items, "__len__"):
            continue
        keys = [str(item[0] if isinstance(item, tuple | list) else item) for item in items]
        return keys if indices is None else [keys[i] for i in indices]
    return None


def _shuffles(loader: Any) -> bool | None:
    """Whether a loader shuffles, where its type tells (None: it does not)."""
    from hpo.trainable.loaders import SeededDataLoader, TensorBatches

    if isinstance(loader, TensorBatches):
        return loader.train
    if isinstance(loader, SeededDataLoader):
        return bool(loader.plan_sampler.plan.get("shuffle"))
    if isinstance(loader, DataLoader):
        sampler = loader.sampler
        if loader.batch_sampler is not None and hasattr(loader.batch_sampler, "sampler"):
            sampler = loader.batch_sampler.sampler
        if isinstance(sampler, RandomSampler):
            return True
        if isinstance(sampler, SequentialSampler):
            return False
    return None


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool((a == b).all())


def _criterion(p: Pipeline, out: Any, target: torch.Tensor) -> torch.Tensor:
    with p._autocast():
        return p.criterion(out, target).float()


def _outputs(p: Pipeline, inputs: Any, target: torch.Tensor, *, train: bool) -> torch.Tensor:
    p.model.train(train)
    with torch.no_grad(), p._autocast():
        return p._forward(inputs, target)


def _loss(p: Pipeline, inputs: Any, target: torch.Tensor, *, train: bool) -> torch.Tensor:
    p.model.train(train)
    with p._autocast():
        return p.criterion(p._forward(inputs, target), target)


def _train_step(p: Pipeline, inputs: Any, target: torch.Tensor) -> None:
    """One optimizer step as `train_epoch` takes it (AMP, clipping; no LR schedule)."""
    p.optimizer.zero_grad(set_to_none=True)
    loss = _loss(p, inputs, target, train=True)
    p.scaler.scale(loss).backward()
    p.scaler.unscale_(p.optimizer)
    nn.utils.clip_grad_norm_(p.model.parameters(), p.config.training.grad_clip_norm or math.inf)
    p.scaler.step(p.optimizer)
    p.scaler.update()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cross_entropy(p: Pipeline) -> bool:
    criterion = p.criterion
    return isinstance(criterion, nn.CrossEntropyLoss) or getattr(criterion, "__name__", "") in (
        "cross_entropy",
    )


def _binary_cross_entropy(p: Pipeline) -> bool:
    criterion = p.criterion
    return isinstance(criterion, nn.BCEWithLogitsLoss) or getattr(criterion, "__name__", "") in (
        "bce_with_logits",
        "binary_cross_entropy_with_logits",
    )


def _class_indices(target: torch.Tensor) -> bool:
    return target.dim() == 1 and not target.dtype.is_floating_point


def _classes(p: Pipeline, target: torch.Tensor) -> int | None:
    """The C of the expected initial loss ln C (2 per output for binary cross-entropy)."""
    if p.task is not Task.CLASSIFICATION:
        return None
    if _cross_entropy(p) and _class_indices(target):
        return p.num_outputs
    if _binary_cross_entropy(p):
        return 2
    return None


def _accuracy(p: Pipeline, out: torch.Tensor, target: torch.Tensor) -> float | None:
    if p.task is not Task.CLASSIFICATION or not _class_indices(target):
        return None
    if out.dim() == 2 and out.shape[1] > 1:
        predicted = out.argmax(dim=1)
    else:
        predicted = (out.reshape(len(out)) > 0).long()
    return float((predicted == target).float().mean())


def _names(names: list[str], limit: int = 6) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _first_forward(p: Pipeline, step: Callable[[], Any]) -> dict[str, Any] | None:
    """How the model is called the first time `step` calls it: mode, gradients, devices.

    The step is stopped there (by an exception from a forward hook), so that a check of
    `train_epoch` and `validate` costs one batch each, not an epoch.
    """
    seen: dict[str, Any] = {}

    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        devices = {str(t.device) for t in _tensors((args, kwargs))}
        devices |= {str(q.device) for q in module.parameters()}
        seen.update(
            training=module.training,
            any_training=[name or "(model)" for name, m in module.named_modules() if m.training],
            grad=torch.is_grad_enabled(),
            devices=sorted(devices),
        )
        raise _Seen

    handle = p.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        step()
    except _Seen:
        pass
    finally:
        handle.remove()
    return seen or None


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _tensors(item)


def _batch_of(ctx: _Context, size: int) -> tuple[Any, torch.Tensor]:
    """A training batch of `size` samples (fewer if the split is smaller), from its batches."""
    from hpo.trainable.datasets import TensorPair

    p = ctx.pipeline
    inputs, target = ctx.batch()
    if len(target) >= size:
        return _take(inputs, size), target[:size]
    dataset = p.train_dataset
    if isinstance(dataset, TensorPair):
        return dataset.x[:size], dataset.y[:size]
    parts: list[tuple[Any, torch.Tensor]] = []
    have = 0
    for batch in p.train_loader:
        parts.append(p._split(batch))
        have += len(parts[-1][1])
        if have >= size:
            break
    try:
        if isinstance(parts[0][0], dict):
            joined: Any = {k: torch.cat([x[k] for x, _ in parts]) for k in parts[0][0]}
        else:
            joined = torch.cat([x for x, _ in parts])
        return _take(joined, size), torch.cat([y for _, y in parts])[:size]
    except (RuntimeError, TypeError):  # batches of different shapes (padded text): the first
        return inputs, target


def _take(inputs: Any, size: int) -> Any:
    if isinstance(inputs, dict):
        return {k: v[:size] if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    return inputs[:size]


def _rss_growth(step: Callable[[], None]) -> tuple[int, str]:
    """How far one call raises this process's peak resident memory, in bytes, and how that
    was measured: Linux's VmHWM after resetting it (`/proc/self/clear_refs`), else the peak
    of `getrusage`, which counts only growth beyond the process's earlier peak."""
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kib(status, "VmRSS")
        step()
        return max(0, _status_kib(status, "VmHWM") - before) * 1024, "VmHWM"
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) * scale, "ru_maxrss"


def _status_kib(status: Path, key: str) -> int:
    for line in status.read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise OSError(f"{status} has no {key}")


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def _gib(n: float) -> str:
    return f"{n / 2**30:.0f} GiB"
