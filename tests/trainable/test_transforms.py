"""Transforms by import path: albumentations, a user's own callables, and what comes out."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from hpo.trainable.config import TransformConfig
from hpo.trainable.transforms import build_transform, check_transform, to_tensor


def items(*specs: dict) -> list[TransformConfig]:
    return [TransformConfig.model_validate(spec) for spec in specs]


@pytest.fixture
def user_transforms(tmp_path, monkeypatch):
    """A module of the user's own transforms, importable as `my_transforms`."""
    (tmp_path / "my_transforms.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            class Invert:
                def __call__(self, image):
                    return 255 - image

            def add(image, amount=0):
                return image.astype(np.float32) + amount

            class ByKeyword:  # albumentations' convention, in a user's class
                def __call__(self, *, image):
                    return {"image": image[:, ::-1]}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_transforms", raising=False)


def image(height: int = 4, width: int = 5) -> np.ndarray:
    return np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3)


def test_no_items_give_no_transform():
    assert build_transform([]) is None


def test_albumentations_flip_and_normalize_compose_into_a_chw_float_tensor():
    transform = build_transform(
        items(
            {"name": "albumentations.HorizontalFlip", "p": 1.0},
            {"name": "albumentations.Normalize", "mean": [0.5] * 3, "std": [0.25] * 3},
        )
    )
    x = image()
    out = transform(x)
    expected = (x[:, ::-1].astype(np.float32) / 255 - 0.5) / 0.25
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert out.shape == (3, 4, 5)
    np.testing.assert_allclose(out.numpy(), expected.transpose(2, 0, 1), rtol=1e-5, atol=1e-5)


def test_a_users_class_and_function_compose_with_albumentations(user_transforms):
    transform = build_transform(
        items(
            {"name": "my_transforms:Invert"},
            {"name": "albumentations.HorizontalFlip", "p": 1.0},
            {"name": "my_transforms.add", "amount": 1.0},  # a function takes its kwargs per call
        )
    )
    x = image()
    expected = (255 - x)[:, ::-1].astype(np.float32) + 1.0  # float: no /255
    np.testing.assert_allclose(transform(x).numpy(), expected.transpose(2, 0, 1))


def test_a_keyword_only_image_parameter_is_called_as_albumentations_is(user_transforms):
    transform = build_transform(items({"name": "my_transforms.ByKeyword"}))
    x = image()
    np.testing.assert_allclose(
        transform(x).numpy(), (x[:, ::-1] / np.float32(255)).transpose(2, 0, 1), rtol=1e-6
    )


def test_to_tensor_scales_uint8_and_puts_channels_first():
    gray = np.full((2, 3), 255, dtype=np.uint8)
    assert to_tensor(gray).shape == (1, 2, 3) and to_tensor(gray).max() == 1.0
    assert to_tensor(image()).shape == (3, 4, 5)
    chw = torch.ones(3, 4, 5)
    assert to_tensor(chw) is chw  # tensors are channels first already
    assert to_tensor(torch.full((1, 2, 2), 255, dtype=torch.uint8)).max() == 1.0
    assert to_tensor("text") == "text"


def test_albumentations_draws_from_the_torch_seed_of_its_process():
    """In a DataLoader worker torch seeds itself from the loader's generator; the same seed
    gives the same augmentations, another seed others (a new seed reseeds the transform)."""
    transform = build_transform(items({"name": "albumentations.HorizontalFlip", "p": 0.5}))
    x = image()

    def flips(seed: int) -> list[bool]:
        torch.manual_seed(seed)
        return [bool((transform(x)[:, :, 0] != to_tensor(x)[:, :, 0]).any()) for _ in range(32)]

    first, other, again = flips(1), flips(2), flips(1)
    assert first == again and first != other
    assert 0 < sum(first) < 32


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "albumentations.HorizontalFlp",
            "module 'albumentations' has no 'HorizontalFlp'; did you mean 'HorizontalFlip'?",
        ),
        ("albumentatons.HorizontalFlip", "there is no module named 'albumentatons'"),
        ("my_transforms:Invrt", "has no attribute 'Invrt'"),
        ("numpy.pi", "'numpy.pi' is a float, not a class or function"),
    ],
)
def test_check_transform_says_what_is_wrong_and_the_closest_name(user_transforms, name, message):
    assert message in check_transform(name)


def test_check_transform_accepts_names_that_import(user_transforms):
    assert check_transform("albumentations.HorizontalFlip") is None
    assert check_transform("my_transforms:Invert") is None
    assert check_transform("my_transforms.add") is None


def test_keyword_arguments_a_class_does_not_take_fail_with_its_name(user_transforms):
    with pytest.raises(TypeError, match="transform my_transforms:Invert cannot take"):
        build_transform(items({"name": "my_transforms:Invert", "strength": 2}))


def test_torchvision_is_not_imported_unless_a_transform_names_it():
    code = textwrap.dedent(
        """
        import sys
        from hpo.trainable.config import TransformConfig
        from hpo.trainable.datasets import open_data
        from hpo.trainable.loaders import make_loader
        from hpo.trainable.transforms import build_transform, check_transform
        build_transform([TransformConfig(name="albumentations.HorizontalFlip")])
        assert check_transform("albumentations.Normalize") is None
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torchvision"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
