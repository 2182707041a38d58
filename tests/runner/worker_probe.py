"""A user model that writes down, from inside the trial's worker, which modules are loaded.

Named by `model.name: tests.runner.worker_probe:probe_mlp` in `test_lean_worker.py`. It imports
only what any model imports (torch), so whatever else the worker holds came from hpo or Ray.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from torch import nn


class _Probe(nn.Sequential):
    """An MLP that records `sys.modules` each time it switches between training and
    evaluation: at each epoch's start and each validation, so the last record comes after
    the trial has reported at least once."""

    def __init__(self, out: str, *layers: nn.Module):
        super().__init__(*layers)
        self._out = out

    def train(self, mode: bool = True) -> _Probe:
        if hasattr(self, "_out"):
            record = {"pid": os.getpid(), "modules": sorted(sys.modules)}
            with open(self._out, "w") as file:
                json.dump(record, file)
        return super().train(mode)


def probe_mlp(cfg: Any, input_shape: tuple[int, ...], output_dim: int) -> nn.Module:
    features = 1
    for size in input_shape:
        features *= size
    return _Probe(cfg.params["out"], nn.Flatten(), nn.Linear(features, output_dim))
