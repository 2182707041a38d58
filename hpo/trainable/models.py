"""Models by name: each builder is `builder(config, input_shape, output_dim) -> nn.Module`.

The registry holds references rather than functions so that the config module can check a
model's name without importing torch; a user's own model is a reference of the same form
and has the same signature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.trainable.user_code import load_callable

if TYPE_CHECKING:
    from torch import nn

    from hpo.trainable.config import ModelConfig

# name -> `module:function`; the spec's `model.name` is checked against these keys.
MODELS: dict[str, str] = {
    "mlp": "hpo.trainable.nets:mlp",
    "cnn": "hpo.trainable.nets:cnn",
}


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], output_dim: int) -> nn.Module:
    """Build the configured model for samples of `input_shape` and `output_dim` outputs.

    Raises:
        TypeError: a user's function did not return an `nn.Module`.
    """
    from torch import nn

    reference = MODELS.get(cfg.name, cfg.name)  # a registered name, else the user's own
    model = load_callable(reference)(cfg, tuple(input_shape), output_dim)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model {cfg.name!r} returned {type(model).__name__}, not an nn.Module")
    return model
