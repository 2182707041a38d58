"""A small centre-point detector (CenterNet's idea, written out): a class heatmap, a box-size
head and a centre-offset head on a 16x16 grid over the 64x64 image.

- `CentreNet(inputs)` gives the raw maps `(heatmap logits, sizes, offsets)`;
- `centre_loss(outputs, targets)` trains them: a focal loss on Gaussian peaks at the boxes'
  centres, and L1 on the size and offset at each centre's cell;
- `decode(outputs)` turns them into `{boxes, scores, labels}` per image: the heatmap's local
  maxima (a 3x3 max-pool stands in for non-maximum suppression), the `top_k` best.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 4  # image pixels per grid cell
_PRIOR = 0.1  # the heatmap's initial probability (CenterNet's bias init): a stable start


def _block(inputs: int, outputs: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class CentreNet(nn.Module):
    """Conv blocks down to stride 4 (a receptive field of 35 pixels, past the largest shape),
    then three 1x1 heads.

    Args:
        classes: object classes (the heatmap's channels).
        width: channels of the first blocks (twice as many after the second stride).
    """

    def __init__(self, classes: int = 2, width: int = 16) -> None:
        super().__init__()
        w = width
        self.backbone = nn.Sequential(
            _block(1, w, stride=2),
            _block(w, w),
            _block(w, 2 * w, stride=2),
            _block(2 * w, 2 * w),
            _block(2 * w, 2 * w),
            _block(2 * w, 2 * w),
        )
        self.heatmap = nn.Conv2d(2 * w, classes, 1)
        self.size = nn.Conv2d(2 * w, 2, 1)
        self.offset = nn.Conv2d(2 * w, 2, 1)
        nn.init.constant_(self.heatmap.bias, -torch.log(torch.tensor((1 - _PRIOR) / _PRIOR)))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.backbone(images)
        return self.heatmap(features), self.size(features), self.offset(features)


def _centres(
    targets: list[dict[str, torch.Tensor]], grid: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Every box of the batch: its image, label, centre cell, offset in it and size (cells)."""
    boxes = torch.cat([t["boxes"] for t in targets]).float()
    image = torch.cat(
        [torch.full((len(t["labels"]),), i, device=boxes.device) for i, t in enumerate(targets)]
    )
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 / STRIDE
    cell = centre.floor().long()
    cell[:, 0].clamp_(0, grid[1] - 1)
    cell[:, 1].clamp_(0, grid[0] - 1)
    return {
        "image": image.long(),
        "label": torch.cat([t["labels"] for t in targets]).long(),
        "cell": cell,
        "offset": centre - cell,
        "size": (boxes[:, 2:] - boxes[:, :2]) / STRIDE,
    }


def centre_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    targets: list[dict[str, torch.Tensor]],
) -> torch.Tensor:
    """CenterNet's loss of a batch: the heatmap's focal loss plus 0.1 L1 on the sizes and 1
    L1 on the offsets, each over the batch's boxes."""
    heatmap, size, offset = (o.float() for o in outputs)
    batch, classes, height, width = heatmap.shape
    c = _centres(targets, (height, width))
    n = len(c["label"])
    # Gaussian peaks of 1 at each centre's cell, the larger where two meet.
    ys = torch.arange(height, device=heatmap.device).view(1, height, 1)
    xs = torch.arange(width, device=heatmap.device).view(1, 1, width)
    sigma = (c["size"].min(1).values / 4).clamp(min=0.5).view(-1, 1, 1)
    distance = (xs - c["cell"][:, 0, None, None]) ** 2 + (ys - c["cell"][:, 1, None, None]) ** 2
    peaks = torch.exp(-distance / (2 * sigma**2))
    wanted = torch.zeros(batch * classes, height * width, device=heatmap.device)
    rows = (c["image"] * classes + c["label"])[:, None].expand(-1, height * width)
    wanted.scatter_reduce_(0, rows, peaks.view(n, -1), reduce="amax")
    wanted = wanted.view_as(heatmap)
    p = heatmap.sigmoid().clamp(1e-4, 1 - 1e-4)
    centre = wanted == 1
    focal = torch.where(
        centre,
        (1 - p) ** 2 * torch.log(p),
        p**2 * (1 - wanted) ** 4 * torch.log(1 - p),
    )
    boxes = max(n, 1)
    heat_loss = -focal.sum() / boxes
    at = (c["image"], slice(None), c["cell"][:, 1], c["cell"][:, 0])
    size_loss = F.l1_loss(size[at], c["size"], reduction="sum") / boxes
    offset_loss = F.l1_loss(offset[at], c["offset"], reduction="sum") / boxes
    return heat_loss + 0.1 * size_loss + offset_loss


@torch.no_grad()
def decode(outputs: Any, top_k: int = 10) -> list[dict[str, torch.Tensor]]:
    """`{boxes, scores, labels}` for each image: its `top_k` heatmap peaks, in pixels."""
    heatmap, size, offset = (o.float() for o in outputs)
    batch, classes, height, width = heatmap.shape
    heat = heatmap.sigmoid()
    heat = heat * (heat == F.max_pool2d(heat, 3, stride=1, padding=1))
    scores, index = heat.view(batch, -1).topk(min(top_k, classes * height * width))
    labels = index // (height * width)
    cells = index % (height * width)
    ys, xs = cells // width, cells % width
    size, offset = size.view(batch, 2, -1), offset.view(batch, 2, -1)
    picked = cells[:, None, :].expand(-1, 2, -1)
    wh = size.gather(2, picked).clamp(min=0) * STRIDE  # (batch, 2, top_k)
    shift = offset.gather(2, picked)
    cx = (xs + shift[:, 0]) * STRIDE
    cy = (ys + shift[:, 1]) * STRIDE
    boxes = torch.stack(
        [cx - wh[:, 0] / 2, cy - wh[:, 1] / 2, cx + wh[:, 0] / 2, cy + wh[:, 1] / 2], dim=2
    )
    return [{"boxes": boxes[i], "scores": scores[i], "labels": labels[i]} for i in range(batch)]
