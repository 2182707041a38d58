"""Tune your own PyTorch model: name it by `module:function` in the spec.

python examples/custom_model.py            # a small search through Ray Tune, into the store
python examples/custom_model.py --no-ray   # one config, trained in plain Python

`my_models.py` sits next to this script; the script's directory is on the import path of
the driver and of Ray's workers, so `my_models:residual_mlp` resolves in both.
"""

import sys

SPEC = {
    "name": "custom-model",
    "metric": "val_accuracy",
    "mode": "max",
    "data": {"name": "digits", "test_fraction": 0.2},
    "model": {
        "name": "my_models:residual_mlp",
        "dropout": 0.1,
        "params": {"width": 64, "blocks": 2},
    },
    "optimizer": {"name": "adamw", "lr": 3e-3},
    "lr_scheduler": {"name": "warmup_cosine", "warmup_epochs": 1},
    "training": {"epochs": 10, "batch_size": 64},
    # The model's own keys are searched like any other, by dotted path.
    "space": {
        "model.params.width": {"type": "categorical", "choices": [32, 64, 128]},
        "model.params.blocks": {"type": "int", "low": 1, "high": 3},
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    },
    "searcher": "random",
    "scheduler": {"name": "asha", "grace_period": 3},
    "budget": {"num_samples": 6},
}


def without_ray() -> None:
    from hpo.trainable import load_dataset
    from hpo.trainable.config import TrainableConfig
    from hpo.trainable.loop import Trainer

    config = TrainableConfig.model_validate(
        {key: SPEC[key] for key in ("data", "model", "optimizer", "lr_scheduler", "training")}
    )
    trainer = Trainer(config, load_dataset(config.data))
    for metrics in trainer.run():
        print(f"epoch {metrics['epoch']:2d}  val_accuracy {metrics['val_accuracy']:.4f}")
    print("test:", trainer.test())


def with_ray() -> None:
    import hpo

    experiment = hpo.run(SPEC)
    trials = experiment.trials()
    columns = ["number", "status", "params.model.params.width", "params.model.params.blocks"]
    print(trials[[*columns, "best.val_accuracy"]].to_string(index=False))


if __name__ == "__main__":
    without_ray() if "--no-ray" in sys.argv else with_ray()
