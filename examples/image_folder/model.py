"""A small CNN for `model: {name: examples.image_folder.model:SmallCNN, params: {...}}`."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Two or more conv blocks, global average pooling, a linear head: any image size.

    hpo passes `num_classes` and `input_shape` (channels, height, width) because the
    signature asks for them; `width`, `blocks` and `dropout` come from `model.params`.
    """

    def __init__(
        self,
        num_classes: int,
        input_shape: tuple[int, ...],
        width: int = 16,
        blocks: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"SmallCNN takes images of (channels, height, width), but got input shape "
                f"{list(input_shape)}; are the transforms giving tensors of 3 dimensions?"
            )
        layers: list[nn.Module] = []
        channels = input_shape[0]
        for block in range(blocks):
            out = width * 2**block
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            # Halve the image while it stays at least 2 pixels wide.
            if min(input_shape[1:]) // 2 ** (block + 1) >= 2:
                layers.append(nn.MaxPool2d(2))
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
