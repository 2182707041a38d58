"""`training.deterministic`: the process-wide switches that make a trial repeat bit for bit.

A trial's seeds (`seeding.py`) and its loaders' orders (`loaders.py`) already repeat; what
varies between runs of one config is the algorithms torch picks. With `deterministic: true`
the trial's worker, before it starts CUDA, asks for deterministic algorithms everywhere
(`torch.use_deterministic_algorithms`, which errors on an op that has none), deterministic
cuDNN without benchmarking, and the cuBLAS workspace that deterministic matmuls need. Without
it, `cudnn.benchmark` is on when training on CUDA: cuDNN times several algorithms for each new
input shape and keeps the fastest, which is faster for fixed shapes but may pick another
algorithm (other rounding) in another run.

The switches are global to the process, and a Ray worker may run several trials one after
another, so both values are set each time: a trial never inherits the last one's.
"""

from __future__ import annotations

import os

import torch

# cuBLAS's deterministic workspace (its docs offer ":4096:8" or the smaller ":16:8"); read when
# the first cuBLAS handle is made, so it must be set before the first matmul on CUDA.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"
_CUBLAS_VARIABLE = "CUBLAS_WORKSPACE_CONFIG"


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """Switch this process to deterministic training, or to the fast defaults.

    Call it before anything runs on CUDA (the pipeline calls it first thing).

    Args:
        deterministic: `training.deterministic`.
        device: the training device; off, `cudnn.benchmark` is on for CUDA only.
    """
    if deterministic:
        # A user's own setting (":16:8", smaller and slower) is kept.
        os.environ.setdefault(_CUBLAS_VARIABLE, CUBLAS_WORKSPACE_CONFIG)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic and device.type == "cuda"
