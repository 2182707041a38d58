"""PBT end to end on hpo's trainable: clones from checkpoints, the stored schedule, and a
resume that is refused."""

from __future__ import annotations

import pytest

import hpo
from hpo.errors import UsageError
from hpo.store import ExperimentStatus, Store, TrialStatus, resolve_url
from hpo.store._schema import trials as trials_table
from tests.conftest import tiny_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("workdir")]


@pytest.mark.usefixtures("ray_session")
def test_pbt_clones_from_checkpoints_records_schedules_and_refuses_a_resume():
    spec = tiny_spec(
        name="pbt",
        training={"epochs": 8, "batch_size": 128},
        checkpoint={"every": 2},
        space={
            "optimizer.lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
            "optimizer.weight_decay": {"type": "float", "low": 0.0, "high": 0.01},
        },
        scheduler={"name": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.5},
        budget={"num_samples": 4},
    )
    experiment = hpo.run(spec)
    trials = experiment.trials()
    assert set(trials["status"]) == {TrialStatus.COMPLETED.value}
    schedule = experiment.schedule()
    assert set(schedule[schedule["segment"] == 0]["number"]) == set(trials["number"])
    exploits = schedule[schedule["segment"] > 0]
    assert not exploits.empty, "with half the population at the bottom, PBT clones some trial"
    history = experiment.history()
    ids = dict(zip(trials["number"], trials["trial_id"], strict=True))
    for _, row in exploits.iterrows():
        number, start = row["number"], row["start_iteration"]
        # Cloned only at a checkpoint (every 2 epochs), from another trial.
        assert start % 2 == 0 and row["cloned_from"] != number
        # The epoch after, the clone trains with its own, mutated learning rate (the last
        # segment's: an earlier one's epochs may have been reported again by a later clone).
        later = schedule[(schedule["number"] == number) & (schedule["segment"] > row["segment"])]
        if start < 8 and later.empty:
            mine = history[history["trial_id"] == ids[number]].set_index("iteration")
            assert mine.loc[start + 1, "lr"] == pytest.approx(row["params.optimizer.lr"])

    # A resume would continue against a population Ray no longer has: refused, with why.
    store = Store(resolve_url(None, None))
    with store.engine.begin() as conn:
        conn.execute(
            trials_table.update()
            .where(trials_table.c.number == 3)
            .values(status=TrialStatus.INTERRUPTED.value)
        )
    store.finish_experiment(experiment.row["id"], ExperimentStatus.INTERRUPTED)
    with pytest.raises(UsageError, match="ran Population Based Training, which cannot be resumed"):
        hpo.resume("pbt")
    assert store.experiment("pbt")["status"] == ExperimentStatus.INTERRUPTED.value
