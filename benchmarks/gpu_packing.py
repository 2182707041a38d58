"""GPU packing: trials per hour with 1, 2 and 4 trials sharing one GPU (`resources: {gpu: 1/k}`).

Small models leave most of a GPU idle; fractional GPUs let Ray Tune run several trials on it at
once. The same trials run through `hpo.runner.run` (what `hpo run` calls) three times, with 1,
2 and 4 trials per GPU, on two tasks: the digits CNN of `search_spaces/digits_cnn.yaml`, and a
larger synthetic task (an MLP of 3 x 1024 units on 50,000 x 256 features). Mixed precision is
hpo's default there (`training.precision: auto`: bf16 where the GPU supports it, else fp16).

    python benchmarks/gpu_packing.py            # 8 trials per row (a few minutes on one GPU)
    python benchmarks/gpu_packing.py --quick    # 4 trials per row, fewer epochs

Goal (issue 8): 4 trials per GPU give at least 2x the trials per hour of 1 trial per GPU.
Without a CUDA GPU it says so and exits 0: there is nothing to measure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import chdir
from pathlib import Path
from typing import Any

import yaml
from _common import environment, load_average, print_table, quiet_libraries
from _common import verdict as verdict_of

GOAL = 2.0
PER_GPU = (1, 2, 4)
SEARCH_SPACES = Path(__file__).resolve().parent.parent / "search_spaces"


def digits_cnn(epochs: int) -> dict[str, Any]:
    """The shipped digits CNN spec, searched at random without early stopping, so that every
    row trains the same amount."""
    spec = yaml.safe_load((SEARCH_SPACES / "digits_cnn.yaml").read_text())
    spec.update(searcher="random", scheduler="fifo", checkpoint={"every": 0})
    spec["training"]["epochs"] = epochs
    spec["data"]["test_fraction"] = 0
    return spec


def synthetic_mlp(epochs: int) -> dict[str, Any]:
    """A task large enough to keep a GPU busier: 50,000 rows x 256 features, 10 classes."""
    return {
        "metric": "val_accuracy",
        "mode": "max",
        "data": {"name": "classification", "n_samples": 50_000, "n_features": 256, "n_classes": 10},
        "model": {"name": "mlp", "hidden_size": 1024, "num_layers": 3},
        "optimizer": {"name": "adamw", "lr": 1e-3},
        "training": {"epochs": epochs, "batch_size": 512},
        "checkpoint": {"every": 0},
        "space": {"optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
        "searcher": "random",
        "scheduler": "fifo",
    }


def trials_per_hour(spec: dict[str, Any], name: str, per_gpu: int, trials: int, tmp: Path) -> float:
    """Run `trials` trials with `per_gpu` of them sharing the GPU; return trials per hour."""
    from rich.console import Console

    from hpo.runner import run

    # CPUs are not what is measured: each trial gets enough, whatever the packing.
    cpu = max(1, min(2, (os.cpu_count() or 4) // max(PER_GPU)))
    workdir = tmp / f"{name}-{per_gpu}"
    workdir.mkdir()
    with chdir(workdir):
        started = time.perf_counter()
        run(
            {**spec, "name": f"{name}-{per_gpu}"},
            console=Console(quiet=True),
            store=f"sqlite:///{workdir / 'hpo.db'}",
            budget={"num_samples": trials},
            resources={"cpu": cpu, "gpu": 1 / per_gpu},
            tracking={"tensorboard": False},
        )
        wall = time.perf_counter() - started
    print(f"  {name}, {per_gpu} per GPU: {trials} trials in {wall:.1f} s", flush=True)
    return trials / wall * 3600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials per row, fewer epochs")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(
            "No CUDA GPU here (torch sees none): GPU packing needs one, so nothing was measured. "
            "Run this on a machine with a GPU."
        )
        return 0
    import ray

    quiet_libraries()
    trials = 4 if args.quick else 8
    tasks = {
        "digits-cnn": digits_cnn(epochs=10 if args.quick else 20),
        "synthetic-mlp": synthetic_mlp(epochs=3 if args.quick else 5),
    }
    gpu = torch.cuda.get_device_name(0)
    precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    print(f"GPU: {gpu} (mixed precision: {precision}); at the start: {load_average()}")
    rates: dict[tuple[str, int], float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="hpo-bench-gpu-") as tmp,
        environment({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}),
    ):
        ray.init(num_gpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            for name, spec in tasks.items():
                for per_gpu in PER_GPU:
                    rates[name, per_gpu] = trials_per_hour(spec, name, per_gpu, trials, Path(tmp))
        finally:
            ray.shutdown()

    rows = []
    for name in tasks:
        base = rates[name, 1]
        for per_gpu in PER_GPU:
            ratio = rates[name, per_gpu] / base
            last = per_gpu == max(PER_GPU)
            rows.append(
                (
                    f"{name}, {per_gpu} per GPU",
                    rates[name, per_gpu],
                    f"{ratio:.2f}x",
                    f">= {GOAL}x" if last else "",
                    f"{ratio / GOAL:.3f}" if last else "",
                    verdict_of(ratio >= GOAL) if last else "",
                )
            )
    print_table(
        f"{trials} trials per row on one {gpu}",
        ["", "trials/hour", "vs 1 per GPU", "goal", "ratio to goal", ""],
        rows,
    )
    print(f"\nRatio to goal: 1 or more meets it. At the end: {load_average()}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
