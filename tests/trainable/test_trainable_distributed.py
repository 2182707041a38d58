"""A trial trained by a DistributedDataParallel group (`resources: {workers: 2}`, Ray Train on
the session's Ray, gloo on CPU) learns what one process learns from the same config."""

import shutil

import numpy as np
import pytest

from hpo.resuming._plan import latest_checkpoints
from hpo.runner._runner import resume, run
from hpo.trainable.loop import fit
from tests.conftest import tiny_spec
from tests.resuming.test_resume import as_a_killed_driver_leaves_it

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("ray_session")]


def test_two_workers_match_one_process(workdir, digits):
    spec = tiny_spec(
        name="ddp",
        # Two workers of half a CPU each fit the session's two CPUs beside the trial itself.
        resources={"cpu": 0.5, "workers": 2},
        budget={"num_samples": 1},
        training={"epochs": 3, "batch_size": 64},
        checkpoint={"every": 1, "keep": 3},
    )
    experiment = run(spec)
    trial = experiment.trials().iloc[0]
    assert trial["status"] == "COMPLETED", trial["error"]
    assert trial["node"].endswith(" x2")  # both processes of the group, on the one node
    history = experiment.history().sort_values("iteration")
    assert list(history["iteration"]) == [1, 2, 3]
    # Its checkpoints carry its results, for a resume after a killed driver.
    saved = max(latest_checkpoints(workdir / "hpo-results" / "ddp")[trial["trial_id"]])
    assert saved.iteration == 3 and sorted(saved.results) == [1, 2, 3]
    assert saved.results[3]["val_accuracy"] == history["val_accuracy"].iloc[-1]
    alone = list(fit(experiment.config(trial["trial_id"]), digits))
    for key in ("train_loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            history[key].to_numpy(), [m[key] for m in alone], rtol=1e-4, err_msg=key
        )

    # Resumed after a killed driver that had stored epoch 1 only: the group goes on from its
    # checkpoint of epoch 2 (taking that epoch's result from it) and trains epoch 3 again.
    for saved in latest_checkpoints(workdir / "hpo-results" / "ddp")[trial["trial_id"]]:
        if saved.iteration == 3:
            shutil.rmtree(saved.path)
    as_a_killed_driver_leaves_it(workdir, "ddp", {trial["trial_id"]: 1})
    after = resume("ddp")
    assert after.trials().iloc[0]["status"] == "COMPLETED"
    again = after.history().sort_values("iteration")
    assert list(again["iteration"]) == [1, 2, 3]
    same = again["epoch_time_s"].to_numpy() == history["epoch_time_s"].to_numpy()
    assert list(same) == [True, True, False]
    np.testing.assert_allclose(
        again["val_loss"].to_numpy(), history["val_loss"].to_numpy(), rtol=1e-4
    )
