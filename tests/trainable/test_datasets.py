"""`open_data`: what a trial trains on, from hpo's arrays, an image folder or a user's function."""

import json
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hpo.trainable import TrainableConfig, load_dataset, make_dataset
from hpo.trainable.config import DataConfig
from hpo.trainable.data import Task, split
from hpo.trainable.datasets import DataParts, TensorPair, open_data, split_dataset

CPU = torch.device("cpu")

USER_DATA = '''
import numpy as np
import torch

from hpo.trainable import Task, make_dataset


class Labelled(torch.utils.data.Dataset):
    """Item i: ([i, i], label), labels 0 (x70), 1 (x20), 2 (x10) as `targets`."""

    def __init__(self, n=100, attribute="targets"):
        self.n = n
        labels = [0] * (7 * n // 10) + [1] * (2 * n // 10) + [2] * (n // 10)
        setattr(self, attribute, labels)
        self._labels = labels

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor([float(i), float(i)]), self._labels[i]


class Unlabelled(Labelled):
    def __init__(self, n=50):
        super().__init__(n, attribute="other")


calls = []


def one_dataset(config):
    calls.append(config)
    return Labelled(config.get("rows", 100))


def by_labels(config):
    return Labelled(100, attribute="labels")


def no_labels(config):
    return Unlabelled()


def mapping(config):
    return {"train": Labelled(30), "val": Labelled(10), "test": Labelled(20)}


def arrays(config):
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    return x, (x[:, 0] > 20).astype(int)


def images_as_arrays(config):
    rng = np.random.default_rng(0)
    return rng.random((30, 4, 4)), rng.integers(0, 3, 30)


def hpo_dataset(config):
    x = np.arange(60, dtype=np.float64).reshape(30, 2)
    return make_dataset(x, x.sum(axis=1), Task.REGRESSION)


def junk(config):
    return 42


def bad_mapping(config):
    return {"training": Labelled(10)}
'''


@pytest.fixture(autouse=True)
def user_data(tmp_path, monkeypatch):
    (tmp_path / "user_data.py").write_text(USER_DATA)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "user_data", raising=False)


def config(data: dict, **sections) -> TrainableConfig:
    return TrainableConfig.model_validate({"data": data, **sections})


def labels_of(subset) -> list[int]:
    return [subset[i][1] for i in range(len(subset))]


def test_a_user_function_is_called_in_the_trial_with_its_data_section_and_own_keys():
    parts = open_data(config({"name": "user_data:one_dataset", "rows": 60}), device=CPU)
    import user_data

    assert user_data.calls[-1]["rows"] == 60 and user_data.calls[-1]["val_fraction"] == 0.2
    assert isinstance(parts, DataParts) and parts.task is Task.CLASSIFICATION
    assert (len(parts.train), len(parts.val), parts.test) == (48, 12, None)
    assert parts.num_outputs == 3 and parts.input_shape == (2,)


@pytest.mark.parametrize("function", ["one_dataset", "by_labels"])
def test_one_dataset_is_split_stratified_and_reproducibly_by_the_seed(function):
    def parts(seed):
        return open_data(
            config({"name": f"user_data:{function}", "test_fraction": 0.2}, seed=seed),
            device=CPU,
        )

    first, again, other = parts(0), parts(0), parts(1)
    assert (len(first.train), len(first.val), len(first.test)) == (60, 20, 20)
    # Each split keeps the classes' shares (70/20/10) exactly.
    assert Counter(labels_of(first.val)) == {0: 14, 1: 4, 2: 2}
    assert Counter(labels_of(first.test)) == {0: 14, 1: 4, 2: 2}
    samples = {int(first.train[i][0][0]) for i in range(60)}
    samples |= {int(first.val[i][0][0]) for i in range(20)}
    samples |= {int(first.test[i][0][0]) for i in range(20)}
    assert samples == set(range(100))  # disjoint, and together the whole dataset
    assert first.train.indices == again.train.indices and first.val.indices == again.val.indices
    assert first.train.indices != other.train.indices


def test_split_dataset_draws_the_split_that_arrays_get():
    """The same seed splits a Dataset as `data.split` splits its arrays."""
    import user_data

    dataset = user_data.Labelled(100)
    train, val, test = split_dataset(dataset, 0.2, 5, test_fraction=0.1)
    x = np.arange(100, dtype=np.float32)[:, None]
    arrays = split(
        make_dataset(x, dataset.targets, Task.CLASSIFICATION),
        0.2,
        5,
        test_fraction=0.1,
        standardize=False,
    )
    assert train == arrays.x_train[:, 0].astype(int).tolist()
    assert val == arrays.x_val[:, 0].astype(int).tolist()
    assert test == arrays.x_test[:, 0].astype(int).tolist()


def test_a_dataset_without_labels_is_split_at_random_and_its_outputs_are_unknown():
    parts = open_data(config({"name": "user_data:no_labels"}), device=CPU)
    assert (len(parts.train), len(parts.val), parts.num_outputs) == (40, 10, None)
    with_classes = open_data(config({"name": "user_data:no_labels", "num_classes": 4}), device=CPU)
    assert with_classes.num_outputs == 4


def test_a_mapping_gives_the_splits_as_they_are_with_the_declared_transforms(tmp_path):
    (tmp_path / "shift.py").write_text("def by(x, amount):\n    return x + amount\n")
    parts = open_data(
        config(
            {"name": "user_data:mapping"},
            transforms={
                "train": [{"name": "shift:by", "amount": 100}],
                "eval": [{"name": "shift:by", "amount": -100}],
            },
        ),
        device=CPU,
    )
    assert (len(parts.train), len(parts.val), len(parts.test)) == (30, 10, 20)
    assert parts.train[3][0].tolist() == [103.0, 103.0]
    assert parts.val[3][0].tolist() == parts.test[3][0].tolist() == [-97.0, -97.0]


def test_arrays_take_the_in_memory_path_on_the_device():
    parts = open_data(config({"name": "user_data:arrays"}), device=CPU)
    assert isinstance(parts.train, TensorPair) and isinstance(parts.val, TensorPair)
    assert len(parts.train) + len(parts.val) == 20
    assert parts.train.x.dtype == torch.float32 and parts.train.y.dtype == torch.int64
    assert abs(parts.train.x.mean().item()) < 1e-5  # standardised on the training split
    assert parts.num_outputs == 2 and parts.input_shape == (2,)


def test_arrays_of_images_keep_their_shape():
    parts = open_data(config({"name": "user_data:images_as_arrays"}), device=CPU)
    assert parts.input_shape == (1, 4, 4) and parts.train.x.shape[1:] == (1, 4, 4)


def test_an_hpo_dataset_is_split_and_its_regression_targets_standardised():
    parts = open_data(
        config({"name": "user_data:hpo_dataset", "task": "regression"}, metric="val_mse"),
        device=CPU,
    )
    assert parts.task is Task.REGRESSION and parts.num_outputs == 1
    assert parts.y_std > 1 and abs(parts.train.y.mean().item()) < 1e-5


def test_the_drivers_dataset_is_split_as_data_split_does():
    digits = load_dataset(DataConfig(name="digits"))
    cfg = config({"name": "digits", "test_fraction": 0.1}, seed=3)
    parts = open_data(cfg, digits, device=CPU)
    splits = split(digits, 0.2, 3, test_fraction=0.1)
    assert parts.train.x.shape == (len(splits.x_train), 1, 8, 8)
    assert torch.equal(
        parts.train.x.view(len(splits.x_train), -1), torch.from_numpy(splits.x_train)
    )
    assert torch.equal(parts.test.y, torch.from_numpy(splits.y_test))
    assert parts.num_outputs == 10 and parts.input_shape == (1, 8, 8)
    # Without the driver's arrays (a plain script), the trial loads them itself.
    alone = open_data(cfg, device=CPU)
    assert torch.equal(alone.val.x, parts.val.x)


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("junk", "returned a int; a data function returns a torch Dataset, a mapping"),
        ("bad_mapping", r"returned a mapping with the keys \['training'\]; it needs"),
    ],
)
def test_what_a_data_function_must_return(function, message):
    with pytest.raises(TypeError, match=message):
        open_data(config({"name": f"user_data:{function}"}), device=CPU)


def test_num_classes_below_the_labels_is_an_error():
    with pytest.raises(ValueError, match=r"num_classes is 2, but the labels hold 3 classes"):
        open_data(config({"name": "user_data:one_dataset", "num_classes": 2}), device=CPU)


def write_image_folder(root: Path) -> None:
    """10 small PNG files, 6 of label "a" and 4 of "b", listed in labels.json."""
    mapping = {}
    for i in range(10):
        pixels = np.full((6, 6, 3), 20 * i + 20, dtype=np.uint8)
        pixels[:, :3] = 0  # the left half dark: a horizontal flip shows
        Image.fromarray(pixels).save(root / f"{i}.png")
        mapping[f"{i}.png"] = "a" if i < 6 else "b"
    (root / "labels.json").write_text(json.dumps(mapping))


def test_an_image_folder_is_split_stratified_with_train_and_eval_transforms(tmp_path):
    write_image_folder(tmp_path)
    parts = open_data(
        config(
            {
                "name": "image_folder",
                "path": str(tmp_path),
                "annotations": str(tmp_path / "labels.json"),
                "val_fraction": 0.5,
            },
            transforms={
                "train": [{"name": "albumentations.HorizontalFlip", "p": 1.0}],
                "eval": [{"name": "albumentations.Normalize", "mean": [0] * 3, "std": [1] * 3}],
            },
        ),
        device=CPU,
    )
    assert parts.num_outputs == 2 and parts.input_shape == (3, 6, 6)
    assert Counter(labels_of(parts.train)) == Counter(labels_of(parts.val)) == {0: 3, 1: 2}
    x_train, _ = parts.train[0]
    x_val, _ = parts.val[0]
    assert x_train[:, :, :3].sum() > 0 and x_train[:, :, 3:].sum() == 0  # flipped
    assert x_val[:, :, :3].sum() == 0 and x_val[:, :, 3:].sum() > 0  # as it is
    assert x_train.dtype == x_val.dtype == torch.float32


def test_an_image_folders_splits_without_transforms_are_tensors(tmp_path):
    write_image_folder(tmp_path)
    parts = open_data(
        config({"name": "image_folder", "path": str(tmp_path), "annotations": "labels.json"}),
        device=CPU,
    )
    x, label = parts.val[0]
    assert x.shape == (3, 6, 6) and x.max() <= 1.0 and label in (0, 1)


def test_the_image_folder_reads_no_image_when_it_is_opened(tmp_path, monkeypatch):
    """Opening lists the files; decoding waits for an item (one, for the input shape)."""
    write_image_folder(tmp_path)
    from PIL import Image as PILImage

    opened = []
    real_open = PILImage.open
    monkeypatch.setattr(
        PILImage, "open", lambda path, *a: opened.append(path) or real_open(path, *a)
    )
    open_data(
        config({"name": "image_folder", "path": str(tmp_path), "annotations": "labels.json"}),
        device=CPU,
    )
    assert len(opened) == 1


def test_transforms_of_dict_items_are_refused_with_a_reason(tmp_path):
    (tmp_path / "dict_data.py").write_text(
        textwrap.dedent(
            """
            import torch

            class Tokens(torch.utils.data.Dataset):
                def __len__(self):
                    return 10

                def __getitem__(self, i):
                    return {"input_ids": torch.tensor([i]), "labels": i % 2}

            def load(config):
                return Tokens()
            """
        )
    )
    sys.modules.pop("dict_data", None)
    plain = open_data(config({"name": "dict_data:load"}), device=CPU)
    assert plain.input_shape is None and set(plain.train[0]) == {"input_ids", "labels"}
    with pytest.raises(TypeError, match="declared transforms apply to the input of"):
        open_data(
            config({"name": "dict_data:load"}, transforms={"train": [{"name": "numpy.abs"}]}),
            device=CPU,
        )
