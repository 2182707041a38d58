"""The built-in image folder (`data: {name: image_folder, path: DIR, image_size: N}`).

Two layouts: one subfolder per class (`DIR/cat/1.png`), or a JSON file (`data.annotations`)
mapping file names, relative to `DIR`, to labels. Images are decoded with Pillow, in the
trial (in its DataLoader workers when it has them), never in the driver: only the list of
files is read when the folder is opened.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hpo.trainable.transforms import to_tensor

if TYPE_CHECKING:
    from hpo.trainable.config import DataConfig

__all__ = ["IMAGE_SUFFIXES", "ImageFolder", "open_image_folder"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


class ImageFolder(torch.utils.data.Dataset):
    """Images and their class labels, read from a folder.

    Each item is `(image, label)`: the image as `transform` makes it (by default a float
    tensor, channels x image_size x image_size, in [0, 1]); the label an int, 0..k-1 for the
    sorted labels (`classes`).

    Args:
        root: the folder.
        image_size: resize every image to this many pixels square (None: keep its size;
            the images must then be of one size to be batched).
        channels: 3 for RGB, 1 for grayscale.
        annotations: a JSON file mapping file names (relative to `root`) to labels, which
            may be strings or ints (None: one subfolder per class). A relative path is
            looked up from the current directory, then in `root`.
        transform: called on each image, a height x width x channels uint8 array (see
            `hpo.trainable.transforms.build_transform`).

    Raises:
        FileNotFoundError: the folder, the annotations or an image they list is missing.
        ValueError: the folder holds no images, or the annotations are not a mapping.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        image_size: int | None = None,
        channels: int = 3,
        annotations: str | Path | None = None,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"image folder {str(self.root)!r} not found (from {Path.cwd()}); set data.path "
                "to a folder of images"
            )
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), but got {channels}")
        self.image_size = image_size
        self.channels = channels
        self.transform = transform
        if annotations is None:
            files, labels = self._subfolders()
        else:
            files, labels = self._annotated(Path(annotations))
        try:
            self.classes: list[Any] = sorted(set(labels))
        except TypeError:
            raise ValueError(
                f"the labels of {self.root} mix kinds ({sorted({type(x).__name__ for x in labels})}); "
                "use all strings or all ints"
            ) from None
        index = {label: i for i, label in enumerate(self.classes)}
        self.samples: list[tuple[Path, int]] = [
            (file, index[label]) for file, label in zip(files, labels, strict=True)
        ]
        self.targets: list[int] = [target for _, target in self.samples]

    def _subfolders(self) -> tuple[list[Path], list[str]]:
        files: list[Path] = []
        labels: list[str] = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            found = sorted(
                p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            files += found
            labels += [folder.name] * len(found)
        if not files:
            raise ValueError(
                f"{self.root} holds no images in subfolders (one subfolder per class, files "
                f"ending in {', '.join(sorted(IMAGE_SUFFIXES))}); or set data.annotations to a "
                "JSON file mapping file names to labels"
            )
        return files, labels

    def _annotated(self, annotations: Path) -> tuple[list[Path], list[Any]]:
        here = annotations.is_file() or annotations.is_absolute()
        if not here and (self.root / annotations).is_file():
            annotations = self.root / annotations
        if not annotations.is_file():
            raise FileNotFoundError(
                f"annotations file {str(annotations)!r} not found (from {Path.cwd()}, nor in "
                f"{self.root})"
            )
        with annotations.open() as stream:
            mapping = json.load(stream)
        if not isinstance(mapping, dict) or not mapping:
            raise ValueError(
                f"{annotations} must hold a JSON object mapping file names to labels, such as "
                f'{{"img/1.png": "cat"}}, but holds a {type(mapping).__name__}'
                + (" with nothing in it" if not mapping else "")
            )
        bad = [(f, v) for f, v in mapping.items() if not isinstance(v, str | int)]
        if bad:
            raise ValueError(
                f"labels in {annotations} must be strings or ints, but {bad[0][0]!r} has "
                f"{bad[0][1]!r}"
            )
        files = [self.root / name for name in mapping]
        # Checked when the folder is opened (one stat per file), so that a trial fails at
        # once, naming the files, rather than some minutes into an epoch.
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise FileNotFoundError(
                f"{len(missing)} image file(s) listed in {annotations} are missing: "
                f"{', '.join(missing[:3])}{more}"
            )
        return files, list(mapping.values())

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, target = self.samples[index]
        image = self.load_image(path)
        return (self.transform(image) if self.transform else to_tensor(image)), target

    def load_image(self, path: Path) -> np.ndarray:
        """One image as a height x width x channels uint8 array, resized and converted.

        Raises:
            FileNotFoundError: naming the file.
        """
        from PIL import Image

        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB" if self.channels == 3 else "L")
        except FileNotFoundError:
            raise FileNotFoundError(f"image file {str(path)!r} of {self.root} is missing") from None
        size = self.image_size
        if size is not None and image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        array = np.asarray(image)
        return array[:, :, None] if array.ndim == 2 else array

    def with_transform(self, transform: Callable[[np.ndarray], Any] | None) -> ImageFolder:
        """The same images with another transform (a shallow copy: the file list is shared)."""
        other = copy.copy(self)
        other.transform = transform
        return other


def open_image_folder(data: DataConfig) -> ImageFolder:
    """The data section's image folder, without transforms (`open_data` adds them per split)."""
    assert data.path is not None  # DataConfig requires a path for image_folder
    return ImageFolder(
        data.path,
        image_size=data.image_size,
        channels=data.channels,
        annotations=data.annotations,
    )
