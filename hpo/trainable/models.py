"""Models by name: each builder is `builder(config, input_shape, output_dim) -> nn.Module`.

The built-in entries are references rather than functions, so that the config module can
check a model's name without importing torch; a user's own model is a reference of the same
form and has the same signature. A plugin adds a builder (or a reference to one) through the
`hpo.models` entry point group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hpo._registry import Registry
from hpo.trainable.user_code import load_callable

if TYPE_CHECKING:
    from torch import nn

    from hpo.trainable.config import ModelConfig

# The keys every model reads; each registered one names the others it reads.
COMMON_OPTIONS = frozenset({"name"})
_MLP_OPTIONS = frozenset(
    {"hidden_size", "num_layers", "hidden_sizes", "activation", "dropout", "batch_norm"}
)

# name -> builder, or its `module:function`; the spec's `model.name` is checked against these.
# A plugin's bare builder receives the whole model config, so it reads every key (None).
MODELS: Registry[str | Callable[..., Any]] = Registry(
    "model", group="hpo.models", plugin_options=None, accepts=(str, Callable)
)
MODELS.register(
    "mlp",
    "hpo.trainable.nets:mlp",
    options=_MLP_OPTIONS,
    description="a multilayer perceptron over the flattened input",
)
MODELS.register(
    "cnn",
    "hpo.trainable.nets:cnn",
    # Its head is an MLP: the MLP's options apply too.
    options=_MLP_OPTIONS | {"channels", "num_blocks", "kernel_size"},
    description="a small VGG-style CNN for image-shaped input, with an MLP head",
)


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], output_dim: int) -> nn.Module:
    """Build the configured model for samples of `input_shape` and `output_dim` outputs.

    Raises:
        TypeError: a user's function did not return an `nn.Module`.
    """
    from torch import nn

    builder = MODELS.get(cfg.name, cfg.name)  # else the user's own
    if isinstance(builder, str):
        builder = load_callable(builder)
    model = builder(cfg, tuple(input_shape), output_dim)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model {cfg.name!r} returned {type(model).__name__}, not an nn.Module")
    return model
