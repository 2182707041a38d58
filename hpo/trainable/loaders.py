"""Batches for one trial: DataLoaders for torch Datasets, index lookups for in-memory data.

Both kinds follow one plan of batches (`batch_plan`):
- the training order is a permutation drawn from a generator seeded by (seed, epoch), so a
  trial resumed at epoch k sees the same batches as one that never stopped, with no
  generator state to save (the loop calls `set_epoch(epoch)` before each epoch);
- a last training batch of one sample is dropped (noise, and batch norm cannot train on it);
- in a DDP group each rank takes its share of every batch, `batch[rank::world]`: the shares
  are disjoint, together they cover the epoch, and every rank gets the same number of
  batches (a rank with one batch fewer would leave the others waiting in all-reduce).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from hpo.trainable.user_code import load_callable

if TYPE_CHECKING:
    from hpo.trainable.config import LoaderConfig
    from hpo.trainable.datasets import TensorPair

__all__ = [
    "EpochLoader",
    "SeededDataLoader",
    "TensorBatches",
    "batch_plan",
    "epoch_seed",
    "make_loader",
    "plan_length",
    "split_batch",
]


class EpochLoader(Protocol):
    """What the loop iterates over, once per epoch."""

    def set_epoch(self, epoch: int) -> None: ...

    def __iter__(self) -> Iterator[Any]: ...  # (x, y) tuples, or dicts

    def __len__(self) -> int: ...


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A seed for one epoch of one trial (`stream` tells apart several uses of one epoch).

    Mixed by numpy's SeedSequence: neighbouring seeds and epochs give unrelated orders.
    """
    state = np.random.SeedSequence([seed % 2**64, epoch % 2**64, stream]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


def batch_plan(
    n: int,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    epoch: int,
    drop_last: bool = False,
    train: bool = True,
    rank: int = 0,
    world: int = 1,
    device: torch.device | None = None,
) -> list[torch.Tensor]:
    """This rank's batches of indices into `n` samples for one epoch (int64 tensors).

    Args:
        n: samples in the split.
        batch_size: samples of one batch over the whole group (each rank gets about
            `batch_size // world` of them).
        shuffle: draw the order from (seed, epoch); else 0..n-1.
        drop_last: drop an incomplete last batch.
        train: drop a last batch of one sample, or of fewer samples than ranks.
        device: where the indices are (the order is drawn on the CPU, the same on every
            device, and copied once).

    Raises:
        ValueError: a training split of fewer samples than ranks (some would get none).
    """
    if train and world > 1 and n < world:
        raise ValueError(
            f"the training split has {n} samples, fewer than the DDP group's {world} ranks"
        )
    if shuffle:
        generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n)
    batches = list(order.to(device).split(batch_size))
    if batches and _drops_last(n, batch_size, drop_last=drop_last, train=train, world=world):
        batches.pop()
    if world > 1:  # an evaluation batch of fewer samples than ranks leaves some with none
        batches = [share for batch in batches if len(share := batch[rank::world])]
    return batches


def _drops_last(n: int, batch_size: int, *, drop_last: bool, train: bool, world: int) -> bool:
    count, rest = divmod(n, batch_size)
    count += rest > 0
    last = rest or batch_size
    return (drop_last and rest > 0) or (train and count > 1 and last < max(2, world))


def plan_length(
    n: int, batch_size: int, *, drop_last: bool = False, train: bool = True, world: int = 1
) -> int:
    """How many batches `batch_plan` gives every rank, without drawing the order (for
    evaluation in a DDP group, the ranks that get a sample of the last batch)."""
    count = -(-n // batch_size)
    if count and _drops_last(n, batch_size, drop_last=drop_last, train=train, world=world):
        count -= 1
    return count


def _check_group(batch_size: int, rank: int, world: int) -> None:
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank must be in 0..world-1, but got rank={rank}, world={world}")
    if batch_size < world:
        raise ValueError(
            f"training.batch_size ({batch_size}) must be at least the DDP group's size "
            f"({world}): each rank takes a share of every batch"
        )


class TensorBatches:
    """Batches of an in-memory split that lives on the device whole: index lookups, with no
    DataLoader and no per-row collation (the fast path of hpo's in-memory datasets)."""

    def __init__(
        self,
        pair: TensorPair,
        batch_size: int,
        *,
        train: bool,
        seed: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        _check_group(batch_size, rank, world)
        self.pair, self.batch_size, self.train = pair, batch_size, train
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _plan(self) -> list[torch.Tensor]:
        return batch_plan(
            len(self.pair.y),
            self.batch_size,
            shuffle=self.train,
            seed=self.seed,
            epoch=self.epoch,
            train=self.train,
            rank=self.rank,
            world=self.world,
            device=self.pair.y.device,
        )

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.pair.x, self.pair.y
        if not self.train and self.world == 1:  # in order: slices, no gather
            for start in range(0, len(y), self.batch_size):
                yield x[start : start + self.batch_size], y[start : start + self.batch_size]
            return
        # One copy of the order to the device per epoch, then lookups there.
        for idx in self._plan():
            yield x[idx], y[idx]

    def __len__(self) -> int:
        if not self.train and self.world > 1:
            return len(self._plan())
        return plan_length(len(self.pair.y), self.batch_size, train=self.train, world=self.world)


class _PlanSampler(Sampler[list[int]]):
    """`batch_plan` as a DataLoader's batch sampler (it runs in the main process)."""

    def __init__(self, n: int, batch_size: int, **plan: Any) -> None:
        self.n, self.batch_size, self.plan = n, batch_size, plan
        self.epoch = 0
        self._cached: tuple[int, list[list[int]]] | None = None

    def _batches(self) -> list[list[int]]:
        if self._cached is None or self._cached[0] != self.epoch:
            batches = batch_plan(self.n, self.batch_size, epoch=self.epoch, **self.plan)
            self._cached = (self.epoch, [b.tolist() for b in batches])
        return self._cached[1]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


class SeededDataLoader(DataLoader):
    """A DataLoader whose order (and its workers' seeds) follow (seed, epoch): `set_epoch`."""

    def __init__(self, dataset: Any, sampler: _PlanSampler, seed: int, **kwargs: Any) -> None:
        generator = torch.Generator()
        super().__init__(dataset, batch_sampler=sampler, generator=generator, **kwargs)
        self.plan_sampler = sampler
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch `epoch`'s order; the workers started for it get seeds drawn from
        (seed, epoch) too, so their random augmentations repeat on a resumed trial
        (unless `persistent_workers` keeps the workers, and their seeds, of epoch one)."""
        self.plan_sampler.epoch = epoch
        self.generator.manual_seed(epoch_seed(self.seed, epoch, stream=1))


def make_loader(
    dataset: Any,
    loader: LoaderConfig,
    batch_size: int,
    *,
    train: bool,
    seed: int,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
    collate: Any = None,
) -> EpochLoader:
    """The batches of one split, for one rank.

    Args:
        dataset: a torch Dataset (batched by a DataLoader with the `loader:` section), or a
            `TensorPair` on the device (batched by index lookups; the section does not apply).
        loader: the `loader:` section.
        batch_size: samples of one batch over the whole DDP group.
        train: shuffle by (seed, epoch), apply `drop_last`, drop a last batch of one sample.
        seed: the trial's seed.
        device: the training device (pinned memory is the default on CUDA).
        rank, world: this process's place in a DDP group; pass world=1 for a split that
            every rank evaluates whole.
        collate: the DataLoader's collate_fn where `loader.collate` names none (None:
            torch's default).

    Raises:
        ValueError: `batch_size` is below `world`.
        ImportError: `loader.collate` does not import.
    """
    from hpo.trainable.datasets import TensorPair

    _check_group(batch_size, rank, world)
    if isinstance(dataset, TensorPair):
        return TensorBatches(dataset, batch_size, train=train, seed=seed, rank=rank, world=world)
    sampler = _PlanSampler(
        len(dataset),
        batch_size,
        shuffle=train,
        seed=seed,
        drop_last=loader.drop_last and train,
        train=train,
        rank=rank,
        world=world,
    )
    options: dict[str, Any] = {
        "num_workers": loader.num_workers,
        "pin_memory": device.type == "cuda" if loader.pin_memory is None else loader.pin_memory,
    }
    if loader.num_workers > 0:
        options["persistent_workers"] = loader.persistent_workers
        if loader.prefetch_factor is not None:
            options["prefetch_factor"] = loader.prefetch_factor
    if loader.collate is not None:
        options["collate_fn"] = load_callable(loader.collate)
    elif collate is not None:
        options["collate_fn"] = collate
    return SeededDataLoader(dataset, sampler, seed, **options)


def split_batch(
    batch: Any, target_key: str, device: torch.device
) -> tuple[torch.Tensor | dict[str, Any], torch.Tensor]:
    """A batch as (inputs, target) on `device`.

    `(x, y)` or `[x, y]` gives `(x, y)`; a dict gives its other keys as the inputs (the
    model's keyword arguments: `input_ids`, `attention_mask`) and `batch[target_key]`.

    Raises:
        ValueError: a dict without `target_key`, or a sequence that is not a pair.
        TypeError: a batch of another kind.
    """
    # From pinned memory the copy can overlap with compute; from pageable memory
    # non_blocking is a plain copy, so it is safe either way.
    non_blocking = device.type == "cuda"

    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=non_blocking)
        # Detection targets: a dict of tensors per image (`detection.collate`).
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            return [{key: move(v) for key, v in item.items()} for item in value]
        return value

    if isinstance(batch, Mapping):
        if target_key not in batch:
            raise ValueError(
                f"a batch holds the keys {sorted(batch)}, but not the target key "
                f"{target_key!r}; set loader.target_key to the key of the targets"
            )
        inputs = {key: move(value) for key, value in batch.items() if key != target_key}
        return inputs, move(batch[target_key])
    if isinstance(batch, Sequence) and not isinstance(batch, str):
        if len(batch) != 2:
            raise ValueError(
                f"a batch must be a pair (inputs, target) or a dict, but got a "
                f"{type(batch).__name__} of {len(batch)} items; return (x, y) from your "
                "Dataset's __getitem__ or dicts with loader.target_key"
            )
        return move(batch[0]), move(batch[1])
    raise TypeError(
        f"a batch must be a pair (inputs, target) or a dict, but got a {type(batch).__name__}"
    )
