"""Batches: seeded per trial and epoch, DDP shares, DataLoader options and batch shapes."""

import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hpo.trainable.config import LoaderConfig, TransformConfig
from hpo.trainable.datasets import TensorPair
from hpo.trainable.image_folder import ImageFolder
from hpo.trainable.loaders import make_loader, split_batch
from hpo.trainable.transforms import build_transform

CPU = torch.device("cpu")


class Numbered(torch.utils.data.Dataset):
    """Item i is (tensor [i], i % 3): batches show which samples they hold."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.tensor([float(i)]), i % 3


def pair(n: int) -> TensorPair:
    return TensorPair(torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n))


def flat(batches: list[list[int]]) -> list[int]:
    return [s for batch in batches for s in batch]


def samples(loader, epoch: int) -> list[list[int]]:
    """The sample numbers of each batch of one epoch."""
    loader.set_epoch(epoch)
    return [split_batch(batch, "labels", CPU)[0].view(-1).long().tolist() for batch in loader]


@pytest.fixture(params=["tensors", "dataloader"])
def source(request):
    """The same 50 samples, in memory or as a torch Dataset."""
    return pair(50) if request.param == "tensors" else Numbered(50)


def loader(dataset, *, train=True, seed=7, batch_size=8, world=1, rank=0, **options):
    return make_loader(
        dataset,
        LoaderConfig(**options),
        batch_size,
        train=train,
        seed=seed,
        device=CPU,
        rank=rank,
        world=world,
    )


def test_training_order_differs_by_epoch_and_repeats_for_the_same_seed_and_epoch(source):
    """The resume contract: a fresh loader at epoch k gives what a running one gave."""
    running = loader(source)
    epochs = [samples(running, epoch) for epoch in (1, 2, 3)]
    assert epochs[0] != epochs[1] != epochs[2]
    assert samples(loader(source), 2) == epochs[1]
    assert samples(loader(source, seed=8), 2) != epochs[1]
    for batches in epochs:  # every sample once, in batches of 8 (the last of 2)
        assert sorted(flat(batches)) == list(range(50))
        assert [len(b) for b in batches] == [8] * 6 + [2]


def test_in_memory_and_dataloader_batches_follow_the_same_plan():
    assert samples(loader(pair(50)), 3) == samples(loader(Numbered(50)), 3)


def test_evaluation_is_in_order_and_keeps_the_last_sample(source):
    batches = samples(loader(source, train=False, batch_size=7), 1)
    assert flat(batches) == list(range(50)) and batches[-1] == [49]


def test_a_last_training_batch_of_one_sample_is_dropped():
    batches = samples(loader(pair(17)), 1)
    assert [len(b) for b in batches] == [8, 8]
    assert len(loader(pair(17))) == 2 == len(loader(Numbered(17)))


def test_drop_last_drops_an_incomplete_training_batch_only():
    assert [len(b) for b in samples(loader(Numbered(50), drop_last=True), 1)] == [8] * 6
    evaluation = samples(loader(Numbered(50), train=False, drop_last=True), 1)
    assert flat(evaluation) == list(range(50))


@pytest.mark.parametrize("world", [2, 3])
def test_ddp_shares_are_disjoint_cover_the_epoch_and_have_as_many_batches(source, world):
    shares = [samples(loader(source, world=world, rank=rank), 4) for rank in range(world)]
    assert len({len(share) for share in shares}) == 1  # no rank waits for another
    seen = [s for share in shares for batch in share for s in batch]
    assert len(seen) == len(set(seen))  # disjoint
    single = samples(loader(source), 4)
    # Together the ranks hold the single process's batches, each rank a share of each;
    # the last one, of 2 samples, only where every one of the ranks gets a sample of it.
    kept = single if world == 2 else single[:-1]
    assert len(shares[0]) == len(kept)
    for i, batch in enumerate(kept):
        assert sorted(s for share in shares for s in share[i]) == sorted(batch)
    assert sorted(seen) == sorted(flat(kept))
    assert all(len(b) <= -(-8 // world) for share in shares for b in share)


def test_evaluation_in_a_ddp_group_shares_every_sample_once_in_no_empty_batch(source):
    loaders = [loader(source, train=False, world=3, rank=rank) for rank in range(3)]
    shares = [samples(each, 1) for each in loaders]
    assert sorted(s for share in shares for s in flat(share)) == list(range(50))
    assert all(batch for share in shares for batch in share)
    # The last batch of 2 has no sample for the third rank.
    assert [len(each) for each in loaders] == [len(share) for share in shares] == [7, 7, 6]


def test_a_batch_smaller_than_the_group_is_refused():
    with pytest.raises(
        ValueError, match=r"batch_size \(2\) must be at least the DDP group's size \(3\)"
    ):
        loader(Numbered(10), batch_size=2, world=3)


def test_dataloader_options_and_pin_memory_default():
    cpu = loader(Numbered(10))
    assert isinstance(cpu, torch.utils.data.DataLoader) and cpu.pin_memory is False
    assert loader(Numbered(10), pin_memory=True).pin_memory is True
    on_cuda = make_loader(
        Numbered(10), LoaderConfig(), 4, train=True, seed=0, device=torch.device("cuda")
    )
    assert on_cuda.pin_memory is True  # the default follows the training device


def test_collate_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_collate.py").write_text(
        textwrap.dedent(
            """
            import torch

            def as_dict(items):
                return {"x": torch.stack([x for x, _ in items]),
                        "target": torch.tensor([y for _, y in items])}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_collate", raising=False)
    batches = list(loader(Numbered(6), train=False, batch_size=4, collate="my_collate:as_dict"))
    assert set(batches[0]) == {"x", "target"} and batches[0]["target"].tolist() == [0, 1, 2, 0]


def test_split_batch_takes_pairs_and_dicts():
    x, y = torch.ones(2, 3), torch.tensor([0, 1])
    assert split_batch((x, y), "labels", CPU) == (x, y)
    assert split_batch([x, y], "labels", CPU) == (x, y)
    inputs, target = split_batch({"input_ids": x, "mask": y, "labels": y}, "labels", CPU)
    assert set(inputs) == {"input_ids", "mask"} and target is y
    inputs, target = split_batch({"input_ids": x, "y": y}, "y", CPU)
    assert set(inputs) == {"input_ids"}


def test_split_batch_says_which_keys_a_dict_has():
    with pytest.raises(
        ValueError,
        match=r"holds the keys \['input_ids', 'label'\], but not the target key 'labels'; set loader.target_key",
    ):
        split_batch({"input_ids": torch.ones(1), "label": torch.ones(1)}, "labels", CPU)
    with pytest.raises(ValueError, match=r"a pair .* but got a tuple of 3 items"):
        split_batch((1, 2, 3), "labels", CPU)


def write_folder(root: Path, n: int, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")


def test_an_image_folder_loads_with_two_worker_processes_and_repeats_their_augmentations(
    tmp_path,
):
    write_folder(tmp_path, 40, size=8)
    normalize = TransformConfig(name="albumentations.Normalize", mean=[0.5] * 3, std=[0.5] * 3)
    folder = ImageFolder(tmp_path, transform=build_transform([normalize]))
    started = time.perf_counter()
    with_workers = list(loader(folder, num_workers=2, batch_size=16, seed=3))
    elapsed = time.perf_counter() - started
    in_process = list(loader(folder, batch_size=16, seed=3))
    assert [len(y) for _, y in with_workers] == [16, 16, 8]
    for (xw, yw), (xp, yp) in zip(with_workers, in_process, strict=True):
        assert xw.shape == (len(yw), 3, 8, 8) and xw.dtype == torch.float32
        assert torch.equal(xw, xp) and torch.equal(yw, yp)
    assert elapsed < 30, f"2 loader workers took {elapsed:.1f}s to load 40 small images"

    # Random flips in the workers: a fresh loader at the same (seed, epoch) draws the same
    # ones (the resume contract), another epoch others.
    flip = TransformConfig(name="albumentations.HorizontalFlip", p=0.5)
    flipping = folder.with_transform(build_transform([flip, normalize]))

    def epoch(number: int) -> torch.Tensor:
        each = loader(flipping, num_workers=2, batch_size=16, seed=3)
        each.set_epoch(number)
        return torch.cat([x for x, _ in each])

    first = epoch(2)
    assert torch.equal(first, epoch(2))
    unflipped = torch.cat([x for x, _ in samples_of(folder, 2)])
    flipped = (first != unflipped).flatten(1).any(dim=1)
    assert 0 < flipped.sum() < len(flipped)
    # The two workers (one batch each) draw their own flips, not one stream twice.
    assert not torch.equal(flipped[:16], flipped[16:32])


def samples_of(dataset, epoch: int) -> list:
    each = loader(dataset, batch_size=16, seed=3)
    each.set_epoch(epoch)
    return list(each)
