"""Configs hold what applies: the options of the chosen kinds, from their registries."""

import pytest

from hpo.trainable import DATASETS, LR_SCHEDULERS, MODELS, OPTIMIZERS, TrainableConfig
from hpo.trainable.config import (
    DataConfig,
    LossConfig,
    LRSchedulerConfig,
    ModelConfig,
    OptimizerConfig,
    applicable,
)
from hpo.trainable.losses import LOSSES

SECTIONS = [
    ("data", DataConfig, DATASETS),
    ("model", ModelConfig, MODELS),
    ("optimizer", OptimizerConfig, OPTIMIZERS),
    ("lr_scheduler", LRSchedulerConfig, LR_SCHEDULERS),
    ("loss", LossConfig, LOSSES),
]

# What `hpo best` printed for a digits MLP without an LR schedule, which none of them reads.
NOT_READ = {
    "data": {"n_samples", "n_features", "n_informative", "n_classes", "noise", "path"},
    "model": {"channels", "num_blocks", "kernel_size", "params"},
    "optimizer": {"momentum", "nesterov"},
    "lr_scheduler": {"step_size", "gamma", "patience", "factor", "min_lr", "pct_start"},
}


@pytest.mark.parametrize(("section", "model", "registry"), SECTIONS)
def test_every_kind_reads_keys_of_its_section_and_every_key_is_read(section, model, registry):
    """The registry and the config model cannot drift apart: no option names a missing key,
    and no key is read by no kind."""
    read = set()
    for name in registry:
        options = applicable(section, name)
        assert options is not None and options <= set(model.model_fields), name
        read |= options
    if section == "model":  # `params` is for a user's own model, which reads every key
        assert applicable("model", "my_models:net") is None
        read.add("params")
    if model.path_keys:  # a class by import path reads these; its other keys are its own
        assert applicable(section, "my_package.module:Class") is None
        read |= model.path_keys
    assert read == set(model.model_fields)


def test_a_config_holds_only_the_options_of_its_kinds():
    config = TrainableConfig.model_validate(
        {"data": {"name": "digits"}, "model": {"name": "mlp"}, "lr_scheduler": {"name": "none"}}
    ).model_dump(mode="json")
    for section, keys in NOT_READ.items():
        assert not keys & set(config[section]), section
    assert config["lr_scheduler"] == {"name": "none"}
    assert config["optimizer"] == {"name": "adam", "lr": 1e-3, "weight_decay": 0.0}
    assert {"hidden_size", "num_layers", "dropout"} <= set(config["model"])


def test_options_that_were_set_stay_even_where_their_kind_does_not_read_them():
    config = TrainableConfig.model_validate(
        {"optimizer": {"name": "adam", "momentum": 0.9}, "lr_scheduler": {"step_size": 3}}
    )
    dumped = config.model_dump(mode="json")
    assert dumped["optimizer"]["momentum"] == 0.9
    assert dumped["lr_scheduler"] == {"name": "none", "step_size": 3}
    # What a config dumps reads back as the same config.
    assert TrainableConfig.model_validate(dumped) == config


def test_the_kinds_own_options_appear_with_their_defaults():
    config = TrainableConfig.model_validate(
        {
            "data": {"name": "classification"},
            "model": {"name": "cnn"},
            "optimizer": {"name": "sgd"},
            "lr_scheduler": {"name": "plateau"},
        }
    ).model_dump(mode="json")
    assert {"n_samples", "n_features", "n_informative", "n_classes", "data_seed"} <= set(
        config["data"]
    )
    assert "noise" not in config["data"]
    assert {"channels", "num_blocks", "kernel_size", "hidden_size"} <= set(config["model"])
    assert config["optimizer"]["momentum"] == 0.0 and "nesterov" in config["optimizer"]
    assert config["lr_scheduler"] == {
        "name": "plateau",
        "factor": 0.1,
        "patience": 5,
        "min_lr": 0.0,
    }


def test_a_users_model_receives_every_model_option():
    dumped = ModelConfig(name="my_models:net").model_dump()
    assert set(dumped) == set(ModelConfig.model_fields)


def test_a_trials_seed_does_not_depend_on_which_keys_were_written():
    """The seed hashes every key, as the release before did: a lean config and a full one of
    the same values train the same (2540600702 is that release's seed of the defaults)."""
    from hpo.trainable.loop import trial_seed

    full = TrainableConfig.model_validate(TrainableConfig().model_dump(context={"every_key": True}))
    assert trial_seed(TrainableConfig()) == trial_seed(full) == 2540600702
