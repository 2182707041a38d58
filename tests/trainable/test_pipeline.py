"""`Pipeline`: the guide's TrainingPipeline shape, with hpo's loop around a subclass."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset as TorchDataset

import hpo
from hpo.trainable.checkpoint import load_checkpoint, save_checkpoint
from hpo.trainable.loop import fit
from hpo.trainable.pipeline import Pipeline, is_pipeline


class Blobs(TorchDataset):
    """Two Gaussian blobs in 4-D: a classification anyone's model learns in an epoch."""

    def __init__(self, n: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.targets = torch.randint(0, 2, (n,), generator=generator)
        self.x = torch.randn(n, 4, generator=generator) + 2.0 * self.targets[:, None]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.targets[i]


class BlobsPipeline(Pipeline):
    """Its own data and model; the optimizer, loss, loop and metrics come from hpo."""

    def setup_data(self) -> None:
        self.train_dataset = Blobs(256, seed=1)
        self.val_dataset = Blobs(64, seed=2)

    def setup_model(self) -> None:
        self.model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))


class CountingPipeline(BlobsPipeline):
    """State of its own, carried by its checkpoints."""

    def setup_data(self) -> None:
        super().setup_data()
        self.batches_seen = 0

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.batches_seen += len(self.train_loader)
        return super().train_epoch(epoch)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "batches_seen": self.batches_seen}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.batches_seen = state["batches_seen"]


CONFIG = {
    "training": {"epochs": 3, "batch_size": 32},
    "optimizer": {"lr": 0.01},
    "data": {"name": "tests:unused", "num_classes": 2},
}


def test_a_subclass_with_its_own_data_and_model_trains_with_hpos_loop_and_metrics():
    epochs = list(fit(CONFIG, pipeline=BlobsPipeline))
    assert [m["epoch"] for m in epochs] == [1, 2, 3]
    assert epochs[-1]["val_accuracy"] > 0.8
    assert epochs[-1]["trial_finished"] and not epochs[0]["trial_finished"]
    assert {"train_loss", "val_loss", "lr", "grad_norm", "val_f1"} <= set(epochs[-1])
    assert hpo.Pipeline is Pipeline and is_pipeline(BlobsPipeline) and not is_pipeline(fit)


def test_a_subclass_continues_from_its_checkpoint_with_its_own_state(tmp_path):
    uninterrupted = CountingPipeline(CONFIG)
    expected = list(uninterrupted.run())

    first = CountingPipeline(CONFIG)
    head = [first.fit_epoch() for _ in range(2)]
    save_checkpoint(first.state_dict(), tmp_path)
    resumed = CountingPipeline(CONFIG)
    resumed.load_state_dict(load_checkpoint(tmp_path))
    assert resumed.batches_seen == first.batches_seen == 2 * len(first.train_loader)
    tail = list(resumed.run())
    assert [m["epoch"] for m in head + tail] == [1, 2, 3]
    # The same batches in the same order: the third epoch is the uninterrupted one's.
    assert tail[0]["train_loss"] == pytest.approx(expected[2]["train_loss"], rel=1e-6)
    assert tail[0]["val_loss"] == pytest.approx(expected[2]["val_loss"], rel=1e-6)
    assert resumed.batches_seen == uninterrupted.batches_seen


def test_a_torch_lr_scheduler_set_by_a_subclass_is_stepped_each_epoch():
    class Decaying(BlobsPipeline):
        def setup_optimizer(self) -> None:
            super().setup_optimizer()
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 1, gamma=0.5)

    lrs = [m["lr"] for m in fit(CONFIG, pipeline=Decaying)]
    assert lrs == pytest.approx([0.01, 0.005, 0.0025])


def test_dict_batches_reach_the_model_as_keyword_arguments():
    class Tokens(TorchDataset):
        def __init__(self, n: int):
            generator = torch.Generator().manual_seed(n)
            self.labels = torch.randint(0, 2, (n,), generator=generator)
            # Label 1 uses the upper half of the vocabulary: learnable from the tokens alone.
            self.ids = torch.randint(1, 5, (n, 6), generator=generator) + 4 * self.labels[:, None]

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            mask = torch.ones(6, dtype=torch.long)
            return {"input_ids": self.ids[i], "attention_mask": mask, "labels": self.labels[i]}

    class Bag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.EmbeddingBag(10, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, input_ids, attention_mask):
            return self.head(self.embed(input_ids * attention_mask))

    class Text(Pipeline):
        def setup_data(self) -> None:
            self.train_dataset, self.val_dataset = Tokens(256), Tokens(64)

        def setup_model(self) -> None:
            self.model = Bag()

    epochs = list(fit({**CONFIG, "optimizer": {"lr": 0.05}}, pipeline=Text))
    assert epochs[-1]["val_accuracy"] > 0.9


def test_a_setup_data_that_sets_no_data_is_told_what_to_set():
    class Empty(Pipeline):
        def setup_data(self) -> None:
            pass

    with pytest.raises(ValueError, match="must set train_loader and val_loader, or train_dataset"):
        Empty(CONFIG)
