"""Tune a whole training function of your own: hpo runs it per trial, you report each epoch.

    python examples/custom_training_function.py

`train` is ordinary PyTorch: it builds its model from `config`, trains, and calls
`hpo.report` after every epoch (with a checkpoint directory, so a retried trial continues).
hpo searches `space`, prunes with ASHA, and records every trial in the same store as a spec
run, so `hpo show custom-function` and `hpo.load("custom-function").trials()` work as usual.
"""

import tempfile
from pathlib import Path

import torch
from sklearn.datasets import make_regression
from torch import nn

import hpo

EPOCHS = 15


def train(config: dict) -> None:
    """Fit a small MLP to a synthetic regression task; report validation MSE each epoch."""
    x, y = make_regression(n_samples=2000, n_features=10, noise=5.0, random_state=0)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32).unsqueeze(1) / 100.0
    x_train, y_train, x_val, y_val = x[:1600], y[:1600], x[1600:], y[1600:]

    model = nn.Sequential(nn.Linear(10, config["width"]), nn.ReLU(), nn.Linear(config["width"], 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    start = 1
    restored = hpo.get_checkpoint()  # set when Ray retries or resumes this trial
    if restored is not None:
        with restored.as_directory() as directory:
            state = torch.load(Path(directory) / "state.pt", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"] + 1

    for epoch in range(start, EPOCHS + 1):
        model.train()
        for batch in torch.randperm(len(x_train)).split(config["batch_size"]):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_mse = nn.functional.mse_loss(model(x_val), y_val).item()
        with tempfile.TemporaryDirectory() as directory:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
            }
            torch.save(state, Path(directory) / "state.pt")
            hpo.report({"epoch": epoch, "val_mse": val_mse}, checkpoint=directory)


def main() -> None:
    experiment = hpo.tune(
        train,
        name="custom-function",
        space={
            "lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
            "width": {"type": "categorical", "choices": [16, 64, 256]},
            "batch_size": {"type": "categorical", "choices": [32, 128]},
        },
        metric="val_mse",
        mode="min",
        searcher="optuna",
        scheduler={"name": "asha", "max_t": EPOCHS, "grace_period": 2},
        budget__num_samples=12,
    )
    best = experiment.best(1).iloc[0]
    print(
        f"best val_mse {best['best.val_mse']:.4f} with lr={best['params.lr']:.4g}, width={best['params.width']}"
    )


if __name__ == "__main__":
    main()
