"""The built-in image folder: both layouts, real PNG files, and the errors a user meets."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hpo.trainable.config import DataConfig
from hpo.trainable.image_folder import ImageFolder, open_image_folder


def write_png(path: Path, value: int, size: tuple[int, int] = (12, 10)) -> None:
    """An RGB image of one colour (value, 255 - value, 0), `size` = (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    pixels[..., 0], pixels[..., 1] = value, 255 - value
    Image.fromarray(pixels).save(path)


@pytest.fixture
def subfolders(tmp_path) -> Path:
    for label, value in (("cat", 10), ("dog", 200)):
        for i in range(3):
            write_png(tmp_path / "images" / label / f"{i}.png", value)
    (tmp_path / "images" / "dog" / "notes.txt").write_text("not an image")
    return tmp_path / "images"


def test_class_per_subfolder_layout(subfolders):
    folder = ImageFolder(subfolders, image_size=8)
    assert folder.classes == ["cat", "dog"] and len(folder) == 6
    assert folder.targets == [0, 0, 0, 1, 1, 1]
    x, label = folder[4]
    assert label == 1 and x.dtype == torch.float32 and x.shape == (3, 8, 8)
    # Pillow's decoded pixels, scaled to [0, 1], channels first.
    assert x[0].mean().item() == pytest.approx(200 / 255, abs=1e-3)
    assert x[1].mean().item() == pytest.approx(55 / 255, abs=1e-3)


def test_grayscale_and_original_size(subfolders):
    x, _ = ImageFolder(subfolders, channels=1)[0]
    assert x.shape == (1, 10, 12)


@pytest.mark.parametrize("labels", [["b", "a", "b", "c"], [3, 1, 3, 7]])
def test_json_annotations_map_file_names_to_labels(tmp_path, labels):
    names = [f"img/{i}.png" for i in range(4)]
    for i, name in enumerate(names):
        write_png(tmp_path / name, 50 * i)
    (tmp_path / "labels.json").write_text(json.dumps(dict(zip(names, labels, strict=True))))
    # A relative annotations path is found in the folder too.
    folder = open_image_folder(
        DataConfig(name="image_folder", path=str(tmp_path), annotations="labels.json")
    )
    assert folder.classes == sorted(set(labels))  # encoded sorted: 0..k-1
    assert folder.targets == [1, 0, 1, 2]
    x, target = folder[3]
    assert target == 2 and x.shape == (3, 10, 12)


def test_a_missing_image_file_names_the_file(tmp_path):
    write_png(tmp_path / "a.png", 0)
    (tmp_path / "labels.json").write_text(json.dumps({"a.png": 0, "gone.png": 1}))
    with pytest.raises(
        FileNotFoundError, match=r"listed in .*labels\.json are missing: .*gone\.png"
    ):
        ImageFolder(tmp_path, annotations=tmp_path / "labels.json")


def test_an_image_removed_after_opening_fails_its_item_naming_the_file(subfolders):
    folder = ImageFolder(subfolders)
    (subfolders / "cat" / "1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"image file '.*cat/1\.png' .* is missing"):
        folder[1]


def test_folders_without_images_and_bad_annotations_say_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image folder .* not found"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images in subfolders"):
        ImageFolder(tmp_path / "empty")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object mapping file names to labels"):
        ImageFolder(tmp_path, annotations=tmp_path / "list.json")
    with pytest.raises(FileNotFoundError, match=r"annotations file 'none\.json' not found"):
        ImageFolder(tmp_path, annotations="none.json")


def test_with_transform_shares_the_files_and_hands_the_transform_raw_pixels(subfolders):
    folder = ImageFolder(subfolders, image_size=4)
    seen = []

    def transform(image):
        seen.append((image.dtype, image.shape))
        return "done"

    assert folder.with_transform(transform)[0] == ("done", 0)
    assert seen == [(np.uint8, (4, 4, 3))]
    assert folder.transform is None and folder[0][0].shape == (3, 4, 4)
