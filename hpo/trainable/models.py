"""Models by name or by import path.

A registered builder is `builder(config, input_shape, output_dim) -> nn.Module`. A user's own
model is `model: {name: package.module:Thing, params: {...}}`, where `Thing` is an
`nn.Module` class or a function: it is called with its `params` as keyword arguments, and
with `num_classes=`/`num_outputs=` and `input_shape=` where its signature asks for them (a
function of the builder's form, `(config, input_shape, output_dim)`, is called as one).

The built-in entries are references rather than functions, so that the config module can
check a model's name without importing torch. A plugin adds a builder (or a reference to
one) through the `hpo.models` entry point group.
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


# The names a user's model may ask for, and what each receives.
_OUTPUTS = ("num_classes", "num_outputs")
_BUILDER_FORM = ("cfg", "config")


def build_model(
    cfg: ModelConfig, input_shape: tuple[int, ...] | None, output_dim: int | None
) -> nn.Module:
    """Build the configured model for samples of `input_shape` and `output_dim` outputs
    (either may be None where the data cannot tell; a model that needs it then fails).

    Raises:
        TypeError: a user's model did not give an `nn.Module`, or its `params` do not fit
            its signature.
        ValueError: the model needs the number of outputs or the input shape, and the data
            does not say it.
    """
    from torch import nn

    builder = MODELS.get(cfg.name, cfg.name)  # else the user's own
    registered = cfg.name in MODELS
    if isinstance(builder, str):
        builder = load_callable(builder)
    if registered or _builder_form(builder):
        model = builder(cfg, _needed(input_shape, "input_shape"), _needed(output_dim, "outputs"))
    else:
        model = builder(**_arguments(builder, cfg, input_shape, output_dim))
    if not isinstance(model, nn.Module):
        raise TypeError(f"model {cfg.name!r} gave {type(model).__name__}, not an nn.Module")
    return model


def _builder_form(builder: Callable[..., Any]) -> bool:
    """Whether a user's model is a builder `(config, input_shape, output_dim)`."""
    parameters = list(_signature(builder).parameters)
    return len(parameters) == 3 and parameters[0] in _BUILDER_FORM


def _arguments(
    builder: Callable[..., Any],
    cfg: ModelConfig,
    input_shape: tuple[int, ...] | None,
    output_dim: int | None,
) -> dict[str, Any]:
    """The keyword arguments of a user's model: its params, and what its signature asks."""
    parameters = _signature(builder).parameters
    arguments = dict(cfg.params)
    for name in (*_OUTPUTS, "input_shape"):
        if name in parameters and name not in arguments:
            value = input_shape if name == "input_shape" else output_dim
            arguments[name] = _needed(value, name)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    unknown = sorted(set(arguments) - set(parameters))
    if unknown and not takes_any:
        raise TypeError(
            f"model {cfg.name!r} takes no parameter(s) {', '.join(unknown)} (from model.params); "
            f"it takes: {', '.join(parameters) or 'none'}"
        )
    return arguments


def _signature(builder: Callable[..., Any]) -> Any:
    import inspect

    return inspect.signature(builder)


def _needed(value: Any, name: str) -> Any:
    if value is None:
        fix = (
            "set data.num_classes, or pass it in model.params"
            if name != "input_shape"
            else "pass it in model.params"
        )
        raise ValueError(f"the model needs {name}, which the data does not tell; {fix}")
    return tuple(value) if name == "input_shape" else value
