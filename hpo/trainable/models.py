"""Models by name: each builder takes the model config and the data's shape."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from hpo.trainable.config import ModelConfig

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


def mlp(cfg: ModelConfig, num_features: int, num_outputs: int) -> nn.Module:
    layers: list[nn.Module] = []
    width = num_features
    for _ in range(cfg.num_layers):
        layers += [nn.Linear(width, cfg.hidden_size), _ACTIVATIONS[cfg.activation]()]
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = cfg.hidden_size
    layers.append(nn.Linear(width, num_outputs))
    return nn.Sequential(*layers)


MODELS: dict[str, Callable[[ModelConfig, int, int], nn.Module]] = {"mlp": mlp}


def build_model(cfg: ModelConfig, num_features: int, num_outputs: int) -> nn.Module:
    return MODELS[cfg.name](cfg, num_features, num_outputs)
