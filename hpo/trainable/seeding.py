"""A trial's seed and its checkpoint's identity, both derived from its config.

The same config trains the same way, in any process; two configs of one experiment get
independent seeds; a checkpoint continues only a trial of the same config.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpo.trainable.config import TrainableConfig

# Sections that do not change how a trial trains, so they do not change its seed either:
# checkpointing, stopping early or what is measured must not change the epochs a trial runs.
NOT_SEEDED = {"checkpoint", "early_stopping", "metric", "mode", "metrics", "objectives"}

# Keys added to the config after trials were first seeded from it, at their defaults: left
# out while they hold them, so that a config of an earlier release keeps its seed and its
# checkpoints (a resume after an upgrade continues them).
_ADDED_LATER: dict[str, dict[str, Any]] = {
    "data": {"num_classes": None, "image_size": None, "annotations": None, "channels": 3},
    "optimizer": {"no_decay": []},
    "lr_scheduler": {"interval": "epoch", "T_0": 10, "T_mult": 1, "eta_min": 0.0},
    "training": {"deterministic": False, "on_oom": "fail"},
}
_ADDED_SECTIONS = ("loader", "transforms", "loss")
# Keys that change how a trial is watched or what its reports call things, not how it
# trains: never part of its seed or identity.
_NOT_TRAINING: dict[str, tuple[str, ...]] = {
    "training": ("detect_anomaly",),
    "data": ("class_names",),
}


def identity(config: TrainableConfig) -> str:
    """The config as what a trial trains with: every key, the unseeded sections left out."""
    from hpo.trainable.config import EVERY_KEY, TrainableConfig

    dumped = config.model_dump(mode="json", exclude=NOT_SEEDED, context=EVERY_KEY)
    defaults = TrainableConfig().model_dump(mode="json", exclude=NOT_SEEDED, context=EVERY_KEY)
    for section in _ADDED_SECTIONS:
        if section in dumped and dumped[section] == defaults.get(section):
            dumped.pop(section)
    for section, keys in _NOT_TRAINING.items():
        for key in keys:
            dumped.get(section, {}).pop(key, None)
    for section, keys in _ADDED_LATER.items():
        for key, default in keys.items():
            if dumped[section].get(key, default) == default:
                dumped[section].pop(key, None)
    return json.dumps(dumped, sort_keys=True)


def trial_seed(config: TrainableConfig) -> int:
    """A trial's seed, from the experiment's seed and the trial's config."""
    return int.from_bytes(hashlib.sha256(identity(config).encode()).digest()[:4], "little")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (user models may use any)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def host_rng_state() -> dict[str, Any]:
    """Python's and numpy's global generator states, as a checkpoint can hold them (tensors
    and plain data only: it is loaded with `weights_only=True`).

    A Dataset that draws its augmentations from `random` or `np.random` in the trial's own
    process (`loader.num_workers: 0`) then draws the same ones in a resumed trial.
    """
    import numpy as np
    import torch

    name, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def set_host_rng_state(state: dict[str, Any]) -> None:
    """Restore what `host_rng_state` returned."""
    import numpy as np

    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["position"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
