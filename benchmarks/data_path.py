"""The data paths of hpo's trainable: in-memory arrays beside torch Datasets and DataLoaders.

Issue 14's `data_path` benchmark, in this process (no Ray: one trial's loop, as a trial
worker runs it, on one torch thread as Ray gives a 1-CPU trial):

1. the quickstart's digits MLP (`search_spaces/digits_mlp.yaml`'s base config), one epoch on
   the array path (hpo's in-memory `digits`, batches indexed on the device) beside the same
   data through a torch `Dataset` + `DataLoader(num_workers=0)` (a user data function
   returning a TensorDataset-like Dataset of the same standardised digits);
2. an image folder of 10,000 PNG files of 32x32 (hpo's built-in `image_folder`, the digits
   written by `examples/image_folder/make_digits_images.py`), an MLP over the pixels, with 0
   and 2 loader workers (and 2 persistent ones): seconds per epoch, where decoding dominates.

Each row is the median of several epochs' `epoch_time_s` (training and validation), the first
epoch left out (warm-up).

    python benchmarks/data_path.py            # 20 digits epochs; 10,000 PNG files, 4 epochs
    python benchmarks/data_path.py --quick    # 6 digits epochs; 2,000 PNG files, 3 epochs

Goal (issue 14): the Dataset path at most 1.2x the array path per epoch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import MACHINE, SPEC, load_average, print_table, verdict

ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.2


def tensor_digits(config: dict[str, Any]) -> TensorDigits:
    """A user data function: the digits, standardised, as a torch Dataset of (x, y) items."""
    from hpo.trainable.config import DataConfig
    from hpo.trainable.data import load_dataset

    digits = load_dataset(DataConfig(name="digits"))
    x = torch.from_numpy(digits.x)
    return TensorDigits((x - x.mean(0)) / x.std(0).clamp(min=1e-6), torch.from_numpy(digits.y))


class TensorDigits(torch.utils.data.Dataset):
    """A TensorDataset with `targets`, which hpo stratifies its split by."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y
        self.targets = y.tolist()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def epoch_times(config: dict[str, Any], epochs: int, dataset: Any = None) -> list[float]:
    """`epoch_time_s` of each epoch after the first, training `config` in this process."""
    from hpo.trainable.loop import fit

    config = {**config, "training": {**config["training"], "epochs": epochs}}
    times = [m["epoch_time_s"] for m in fit(config, dataset)]
    return times[1:]


def digits_rows(epochs: int) -> list[list[Any]]:
    from hpo.spec import load_spec
    from hpo.trainable.config import DataConfig
    from hpo.trainable.data import load_dataset

    config = load_spec(SPEC).base_config()
    arrays = statistics.median(epoch_times(config, epochs, load_dataset(DataConfig(name="digits"))))
    # The module by its own name: as a script it is `__main__`, which a reference cannot name.
    data = {**config["data"], "name": "data_path:tensor_digits"}
    loader = statistics.median(epoch_times({**config, "data": data}, epochs))
    ratio = loader / arrays
    return [
        ["array path (in-memory digits)", arrays * 1000, "1.00x", "", ""],
        [
            "Dataset + DataLoader(num_workers=0)",
            loader * 1000,
            f"{ratio:.2f}x",
            f"<= {GOAL}x",
            f"{ratio / GOAL:.2f} ({verdict(ratio <= GOAL)})",
        ],
    ]


def image_rows(folder: Path, epochs: int) -> list[list[Any]]:
    config = {
        "data": {
            "name": "image_folder",
            "path": str(folder),
            "annotations": "annotations.json",
            "image_size": 32,
            "channels": 1,
            "val_fraction": 0.2,
        },
        "model": {"name": "mlp", "hidden_size": 128, "num_layers": 2},
        "optimizer": {"name": "adam", "lr": 1e-3},
        "training": {"epochs": epochs, "batch_size": 64},
        "metric": "val_accuracy",
        "mode": "max",
    }
    rows = []
    base = None
    for label, loader in [
        ("0 loader workers", {"num_workers": 0}),
        ("2 loader workers", {"num_workers": 2}),
        ("2 persistent loader workers", {"num_workers": 2, "persistent_workers": True}),
    ]:
        seconds = statistics.median(epoch_times({**config, "loader": loader}, epochs))
        base = base or seconds
        rows.append([label, seconds, f"{seconds / base:.2f}x"])
        print(f"  {label}: {seconds:.2f} s per epoch", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and images")
    args = parser.parse_args()
    digits_epochs, images, image_epochs = (6, 2000, 3) if args.quick else (20, 10_000, 4)

    torch.set_num_threads(1)  # as Ray gives a trial of 1 CPU
    sys.path.insert(0, str(ROOT))  # the examples' image writer
    from examples.image_folder.make_digits_images import write_digits

    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    rows = digits_rows(digits_epochs)
    print_table(
        f"Digits MLP, ms per epoch (median of {digits_epochs - 1} epochs after the first)",
        ["", "ms/epoch", "x array path", "goal", "ratio to goal"],
        rows,
    )
    with tempfile.TemporaryDirectory(prefix="hpo-bench-data-path-") as tmp:
        started = time.perf_counter()
        write_digits(tmp, limit=images, size=32)
        print(f"\nwrote {images:,} PNG files of 32x32 in {time.perf_counter() - started:.1f} s")
        image = image_rows(Path(tmp), image_epochs)
    print_table(
        f"Image folder, {images:,} PNG files of 32x32, MLP: seconds per epoch "
        f"(median of {image_epochs - 1} epochs after the first)",
        ["", "s/epoch", "x 0 workers"],
        image,
    )
    print(f"\nOne run each; numbers from a shared, noisy machine. At the end: {load_average()}.")


if __name__ == "__main__":
    main()
