"""A user's own model, for `model.name: my_models:residual_mlp` (see custom_model.py).

Any function `(config, input_shape, output_dim) -> nn.Module` is a model: `config` is the
spec's `model` section, and `config.params` holds the model's own (searchable) keys.
"""

from __future__ import annotations

import math

from torch import nn


class _Residual(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.block = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout)
        )

    def forward(self, x):
        return x + self.block(x)


def residual_mlp(config, input_shape: tuple[int, ...], output_dim: int) -> nn.Module:
    """An MLP of `params.blocks` residual blocks of `params.width` units."""
    width = int(config.params.get("width", 64))
    blocks = int(config.params.get("blocks", 2))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), width),
        *(_Residual(width, config.dropout) for _ in range(blocks)),
        nn.LayerNorm(width),
        nn.Linear(width, output_dim),
    )
