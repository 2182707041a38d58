"""A user's own image Dataset: PNG files listed in a JSON annotation file, read with Pillow.

This is the shape of the PyTorch training guide's custom Dataset, and what a spec names as
`data: {name: examples.image_folder.digits_dataset:load, path: digits_png}` (run from the
repository root, so that `examples` imports). hpo calls `load` inside each trial, never in
the driver: the files are opened by the trial's DataLoader workers only.

`examples/image_folder/make_digits_images.py` writes such a folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


class DigitsPNG(torch.utils.data.Dataset):
    """Images listed in `root/annotations` (`{"images/00000.png": 3, ...}`), with their labels.

    An item is `(image, label)`: the image as a uint8 numpy array, height x width x channels
    (what albumentations takes), resized to `size` x `size` pixels when `size` is given, and
    passed through `transform` when one is given.

    Attributes:
        files: the image files, in the annotation file's sorted order.
        targets: each file's label as an int 0..k-1 (hpo stratifies its splits by these).
        classes: the labels as the annotation file writes them, sorted; `targets` index them.
    """

    def __init__(
        self,
        root: str | Path,
        annotations: str = "annotations.json",
        *,
        transform: Callable[..., Any] | None = None,
        channels: int = 1,
        size: int | None = None,
    ):
        self.root = Path(root)
        path = self.root / annotations
        if not path.is_file():
            raise FileNotFoundError(
                f"annotation file {str(path)!r} not found; write one with "
                "examples/image_folder/make_digits_images.py --out "
                f"{self.root}"
            )
        labels: Mapping[str, Any] = json.loads(path.read_text())
        self.files = sorted(labels)
        self.classes = sorted({labels[name] for name in self.files})
        index = {label: i for i, label in enumerate(self.classes)}
        self.targets = [index[labels[name]] for name in self.files]
        self.transform = transform
        self.mode = {1: "L", 3: "RGB"}[channels]
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image = self.open(self.root / self.files[i])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[i]

    def open(self, path: Path) -> np.ndarray:
        """Decode one image as height x width x channels uint8."""
        with Image.open(path) as image:
            image = image.convert(self.mode)
            if self.size is not None and image.size != (self.size, self.size):
                image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image)
        return pixels[:, :, None] if pixels.ndim == 2 else pixels


def load(config: dict[str, Any]) -> DigitsPNG:
    """The spec's `data.name`: the whole dataset, which hpo splits by `val_fraction` and
    `test_fraction` (stratified by `targets`) and wraps with the spec's train and eval
    transforms.

    Args:
        config: the spec's data section: `path` (the folder), `image_size` (resize to this
            many pixels square; default: as the files are; searchable as `data.image_size`),
            and this function's own key `annotation_file` (default annotations.json).
    """
    if not config.get("path"):
        raise ValueError(
            f"{__name__}:load needs data.path, the folder of the images and their annotation "
            f"file; got the data section {dict(config)}"
        )
    return DigitsPNG(
        config["path"],
        config.get("annotation_file") or "annotations.json",
        size=config.get("image_size"),
    )
