"""A synthetic detection dataset: 1 to 3 squares and discs on noise, 64x64, with known boxes.

Each item is `(image, {"boxes": (k, 4) float32, "labels": (k,) int64})`: the image a (1, 64, 64)
float tensor, the boxes `(x1, y1, x2, y2)` in pixels, label 0 a square and 1 a disc. Shapes do
not overlap; their sides are 10 to 22 pixels. Everything is drawn from a seed, so every trial
sees the same images, and the validation split is a separate draw.
"""

from __future__ import annotations

from typing import Any

import torch

CLASSES = ("square", "disc")
IMAGE_SIZE = 64
_SIDES = (10, 22)  # smallest and largest side, inclusive
_GAP = 2  # pixels between two shapes


class Shapes(torch.utils.data.Dataset):
    """`size` images of 1 to 3 shapes each, from `seed`.

    Args:
        size: the number of images.
        seed: the generator's seed.
        noise: the standard deviation of the background's Gaussian noise (a shape adds 1).
    """

    def __init__(self, size: int, seed: int = 0, noise: float = 0.3) -> None:
        generator = torch.Generator().manual_seed(seed)
        s = IMAGE_SIZE
        self.images = noise * torch.randn(size, 1, s, s, generator=generator)
        centres = torch.arange(s) + 0.5  # pixel centres
        ys, xs = centres[:, None], centres[None, :]
        self.items: list[dict[str, torch.Tensor]] = []
        for i in range(size):
            boxes: list[list[float]] = []
            labels: list[int] = []
            wanted = int(torch.randint(1, 4, (), generator=generator))
            for _ in range(50 * wanted):  # tries; a crowded image keeps fewer shapes
                if len(boxes) == wanted:
                    break
                side = int(torch.randint(_SIDES[0], _SIDES[1] + 1, (), generator=generator))
                x1, y1 = (int(v) for v in torch.randint(0, s - side + 1, (2,), generator=generator))
                box = [float(x1), float(y1), float(x1 + side), float(y1 + side)]
                if any(_near(box, other) for other in boxes):
                    continue
                label = int(torch.randint(0, len(CLASSES), (), generator=generator))
                if label == 0:
                    self.images[i, 0, y1 : y1 + side, x1 : x1 + side] += 1.0
                else:
                    cx, cy, r = x1 + side / 2, y1 + side / 2, side / 2
                    self.images[i, 0] += (((xs - cx) ** 2 + (ys - cy) ** 2) <= r**2).float()
                boxes.append(box)
                labels.append(label)
            self.items.append(
                {
                    "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                    "labels": torch.tensor(labels, dtype=torch.int64),
                }
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.images[i], self.items[i]


def _near(a: list[float], b: list[float]) -> bool:
    """Whether two boxes overlap or come closer than `_GAP` pixels."""
    return not (
        a[2] + _GAP <= b[0] or b[2] + _GAP <= a[0] or a[3] + _GAP <= b[1] or b[3] + _GAP <= a[1]
    )


def load(data: dict[str, Any]) -> dict[str, Shapes]:
    """hpo's data function (`data.name: examples.detection.shapes:load`): the train and val
    splits, `data.train_images` and `data.val_images` images (default 768 and 192), drawn
    from `data.data_seed`."""
    seed = int(data.get("data_seed", 0))
    return {
        "train": Shapes(int(data.get("train_images", 768)), seed=2 * seed),
        "val": Shapes(int(data.get("val_images", 192)), seed=2 * seed + 1),
    }
