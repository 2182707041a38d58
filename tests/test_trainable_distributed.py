"""A trial trained by a DistributedDataParallel group (`resources: {workers: 2}`, Ray Train on
the session's Ray, gloo on CPU) learns what one process learns from the same config."""

import numpy as np
import pytest

from hpo.runner import run
from hpo.trainable.loop import fit
from tests.conftest import tiny_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def test_two_workers_match_one_process(workdir, digits):
    spec = tiny_spec(
        name="ddp",
        # Two workers of half a CPU each fit the session's two CPUs beside the trial itself.
        resources={"cpu": 0.5, "workers": 2},
        budget={"num_samples": 1},
        training={"epochs": 3, "batch_size": 64},
        checkpoint={"every": 1},
    )
    experiment = run(spec)
    trial = experiment.trials().iloc[0]
    assert trial["status"] == "COMPLETED", trial["error"]
    assert trial["node"].endswith(" x2")  # both processes of the group, on the one node
    history = experiment.history().sort_values("iteration")
    assert list(history["iteration"]) == [1, 2, 3]
    alone = list(fit(experiment.config(trial["trial_id"]), digits))
    for key in ("train_loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            history[key].to_numpy(), [m[key] for m in alone], rtol=1e-4, err_msg=key
        )
