"""The trainable as Ray Tune runs it: checkpoints reported at their cadence, and loadable."""

import pytest

from hpo.trainable import load_dataset
from hpo.trainable.checkpoint import load_checkpoint
from hpo.trainable.config import FINAL_KEY, DataConfig
from hpo.trainable.loop import Trainer

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


def test_trials_report_checkpoints_that_resume(tmp_path):
    from ray import tune

    from hpo.trainable.ray_trainable import tune_trainable

    dataset = load_dataset(DataConfig(name="iris"))
    config = {
        "data": {"name": "iris"},
        "model": {"hidden_size": 8, "num_layers": 1},
        "training": {"epochs": 5},
        "checkpoint": {"every": 2},
    }
    tuner = tune.Tuner(
        tune.with_parameters(tune_trainable, dataset=dataset),
        param_space=config,
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    result = tuner.fit()[0]
    assert result.error is None
    assert result.metrics["epoch"] == 5 and result.metrics[FINAL_KEY] is True
    # every 2 epochs, and the last: 2, 4, 5
    saved = sorted(load_checkpoint(c.path)["epoch"] for c, _ in result.best_checkpoints)
    assert saved == [2, 4, 5]
    with result.checkpoint.as_directory() as directory:
        trainer = Trainer(config, dataset)
        trainer.load_state_dict(load_checkpoint(directory))
    assert trainer.epoch == 5 and trainer.finished
