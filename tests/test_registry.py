"""The registry helper: names registered once, with their options, and clear errors."""

from __future__ import annotations

import pytest

from hpo._registry import Entry, Registry, UnknownName


def optimizers() -> Registry[str]:
    registry: Registry[str] = Registry("optimizer")
    for name in ("sgd", "adam", "adamw", "rmsprop"):
        registry.register(name, f"build_{name}", options={"momentum"} if name == "sgd" else ())
    return registry


def test_an_unknown_name_names_the_closest_and_every_one():
    with pytest.raises(UnknownName) as info:
        optimizers().check("adma")
    assert str(info.value) == (
        "unknown optimizer 'adma'; did you mean 'adam'? available: adam, adamw, rmsprop, sgd"
    )
    assert isinstance(info.value, ValueError)  # pydantic reports it at its key


def test_an_unknown_name_without_a_close_one_lists_them_and_another_form():
    message = optimizers().unknown("lbfgs", ", or 'package.module:function'")
    assert message == (
        "unknown optimizer 'lbfgs'; available: adam, adamw, rmsprop, sgd, "
        "or 'package.module:function'"
    )


def test_a_name_is_registered_once_unless_overridden():
    registry = optimizers()
    with pytest.raises(ValueError, match="'sgd' is registered already; pass override=True"):
        registry.register("sgd", "other")
    registry.register("sgd", "other", override=True)
    assert registry["sgd"] == "other"


def test_the_decorator_registers_what_it_wraps_with_its_docstring():
    registry: Registry[object] = Registry("model")

    @registry.register("tiny", options={"width"})
    def tiny() -> None:
        """A tiny model.

        More lines that a description leaves out.
        """

    assert registry.entry("tiny") == Entry(tiny, frozenset({"width"}), "A tiny model.")
    assert registry.options("tiny") == {"width"}
    assert registry.get("big", "fallback") == "fallback"


def test_a_name_may_read_every_key_of_its_section():
    # What a plugin's bare builder reads, which receives the whole section: no list of the
    # section's keys is kept beside the section's model.
    registry: Registry[str] = Registry("model", plugin_options=None)
    registry.register("any", "build_any", options=None)
    assert registry.options("any") is None


def test_names_read_as_a_sorted_collection_and_as_prose_in_their_order():
    registry = optimizers()
    assert list(registry) == ["adam", "adamw", "rmsprop", "sgd"]
    assert len(registry) == 4 and "adam" in registry and "adagrad" not in registry
    assert registry.describe() == "sgd, adam, adamw or rmsprop"
    assert (
        registry.describe("'module:function'") == "sgd, adam, adamw, rmsprop or 'module:function'"
    )


def test_an_entry_point_group_without_plugins_leaves_the_built_in_names():
    registry: Registry[str] = Registry("model", group="hpo.tests.no-such-group")
    registry.register("mlp", "hpo.trainable.nets:mlp")
    assert list(registry) == ["mlp"]
    with pytest.raises(UnknownName, match="available: mlp"):
        registry.check("resnet")
