"""The built-in networks: an MLP for any input, and a small CNN for image-shaped input."""

from __future__ import annotations

import math

from torch import nn

from hpo.trainable.config import ModelConfig

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


def hidden_sizes(cfg: ModelConfig) -> list[int]:
    """The hidden widths: explicit `hidden_sizes`, else `num_layers` of `hidden_size`."""
    return (
        list(cfg.hidden_sizes)
        if cfg.hidden_sizes is not None
        else [cfg.hidden_size] * cfg.num_layers
    )


def _hidden_block(cfg: ModelConfig, width_in: int, width_out: int) -> list[nn.Module]:
    # Linear -> BatchNorm -> activation -> dropout; the linear layer's bias is redundant
    # before batch norm, which re-centres every unit.
    layers: list[nn.Module] = [nn.Linear(width_in, width_out, bias=not cfg.batch_norm)]
    if cfg.batch_norm:
        layers.append(nn.BatchNorm1d(width_out))
    layers.append(_ACTIVATIONS[cfg.activation]())
    if cfg.dropout > 0:
        layers.append(nn.Dropout(cfg.dropout))
    return layers


def mlp(cfg: ModelConfig, input_shape: tuple[int, ...], output_dim: int) -> nn.Module:
    """A multilayer perceptron over the flattened input."""
    layers: list[nn.Module] = [nn.Flatten()] if len(input_shape) > 1 else []
    width = math.prod(input_shape)
    for size in hidden_sizes(cfg):
        layers += _hidden_block(cfg, width, size)
        width = size
    layers.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers)


def cnn(cfg: ModelConfig, input_shape: tuple[int, ...], output_dim: int) -> nn.Module:
    """A small VGG-style CNN: blocks of two convolutions and a 2x2 max-pool, then an MLP head.

    Each block doubles the channels and halves the image; pooling stops at 1x1, so it fits
    images as small as the 8x8 digits.
    """
    if len(input_shape) != 3:
        raise ValueError(
            f"model cnn needs image-shaped data (channels, height, width), but the data has "
            f"input shape {list(input_shape)}; set data.input_shape or use model mlp"
        )
    channels, height, width = input_shape
    act = _ACTIVATIONS[cfg.activation]
    pad = cfg.kernel_size // 2
    layers: list[nn.Module] = []
    for block in range(cfg.num_blocks):
        out = cfg.channels * 2**block
        for conv_in in (channels, out):
            layers += [
                nn.Conv2d(conv_in, out, cfg.kernel_size, padding=pad, bias=not cfg.batch_norm)
            ]
            if cfg.batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(act())
        if min(height, width) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        channels = out
    layers.append(nn.Flatten())
    features = channels * height * width
    if cfg.dropout > 0:
        layers.append(nn.Dropout(cfg.dropout))
    for size in hidden_sizes(cfg):
        layers += _hidden_block(cfg, features, size)
        features = size
    layers.append(nn.Linear(features, output_dim))
    return nn.Sequential(*layers)
