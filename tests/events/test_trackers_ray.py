"""The trackers in real searches: what TensorBoard holds of a trial `hpo resume` continued."""

from __future__ import annotations

import pytest

from tests.resuming.test_resume import as_a_killed_driver_leaves_it, counts_to_four
from tests.runner.test_failing_trials import X

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]


def test_a_continued_trials_tensorboard_best_goes_on_from_the_stored_one(workdir):
    """`counts_to_four` reports `x * step`: minimising, each trial's best is its first step. The
    resumed run reports only steps 3 and 4 (from the checkpoint of step 4, the store lacking
    them), so a `best/` started over there would say `3 * x`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import hpo

    hpo.tune(counts_to_four, space=X, metric="score", mode="min", budget__num_samples=2)
    before = hpo.load("counts_to_four").trials().set_index("trial_id")
    as_a_killed_driver_leaves_it(workdir, "counts_to_four", dict.fromkeys(before.index, 2))

    after = hpo.resume("counts_to_four", function=counts_to_four).trials()
    logdir = workdir / "hpo-results" / "counts_to_four" / "tensorboard"
    for _, trial in after.iterrows():
        assert trial["status"] == "COMPLETED"
        folder = logdir / f"trial_{trial['number']:05d}"
        _, resumed_run = sorted(folder.glob("events.out.tfevents.*"))
        events = EventAccumulator(str(resumed_run))
        events.Reload()
        assert [s.step for s in events.Scalars("score")] == [3, 4]  # what the resume reported
        best = events.Scalars("best/score")[-1]
        assert best.step == 4
        assert best.value == pytest.approx(trial["best.score"])
        assert best.value == pytest.approx(before.loc[trial["trial_id"], "final.score"] / 4)
