"""A trial's training state on disk: one file, loaded with `weights_only=True`.

The state holds tensors, numbers, strings and their containers only, so that loading a
checkpoint never runs code from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATE_FILE = "trainer_state.pt"


def save_checkpoint(state: dict[str, Any], directory: str | Path) -> Path:
    """Write `state` (a `Trainer.state_dict()`) into `directory` and return the file."""
    import torch

    path = Path(directory) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Read the state that `save_checkpoint` wrote into `directory`, onto the CPU.

    Raises:
        FileNotFoundError: the directory holds no trainer state.
        UnsafeCheckpoint: the file holds objects other than tensors and plain data (a pickle
            that would run code on loading); nothing of it was run.
    """
    import pickle

    import torch

    from hpo.errors import UnsafeCheckpoint

    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no trainer state in {str(directory)!r} (expected {STATE_FILE})")
    # map_location: a checkpoint written on a GPU must load on a CPU-only machine too; the
    # trainer moves the state onto its own device.
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UnsafeCheckpoint(
            f"{path} holds objects other than tensors and plain data, so it was not loaded "
            "(hpo loads checkpoints as weights only and never runs code from them); was it "
            "written by hpo? Delete it to train this trial from the start"
        ) from None
