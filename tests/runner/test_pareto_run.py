"""A search of several objectives, end to end on Ray: Optuna is told every objective and the
constraints, the store keeps feasibility, and a killed run resumes to the same front."""

from __future__ import annotations

import pytest

from tests.conftest import tiny_spec
from tests.resuming.test_resume import as_a_killed_driver_leaves_it
from tests.runner.test_failing_trials import study_trials


def _spec(name: str, num_samples: int = 6) -> dict:
    data = tiny_spec(
        name=name,
        objectives={"val_accuracy": "max", "n_params": "min"},
        constraints=["n_params <= 1600"],
        searcher={"name": "optuna", "sampler": "nsga2", "population_size": 3},
        space={"model.hidden_size": {"type": "int", "low": 2, "high": 32}},
        training={"epochs": 2, "batch_size": 128},
        checkpoint={"every": 1, "keep": 2},
        budget={"num_samples": num_samples, "max_concurrent": 1},
    )
    del data["metric"], data["mode"]
    return data


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_optuna_is_told_every_objective_and_resume_keeps_the_front(workdir):
    import hpo

    experiment = hpo.run(_spec("mo-run"))
    trials = experiment.trials().sort_values("number")
    assert (trials["status"] == "COMPLETED").all()
    assert (trials["feasible"] == (trials["final.n_params"] <= 1600)).all()
    study = sorted(study_trials(workdir / "hpo-results" / "mo-run"), key=lambda t: t.number)
    assert [t.values for t in study] == trials[
        ["final.val_accuracy", "final.n_params"]
    ].values.tolist()
    assert [t.constraints["n_params <= 1600"] for t in study] == (
        trials["final.n_params"] - 1600
    ).tolist()
    front = experiment.pareto()
    assert len(front) >= 1 and front["feasible"].all()

    # killed while its last trial was in its first epoch: resume ends it and keeps the rest
    last = trials.iloc[-1]["trial_id"]
    as_a_killed_driver_leaves_it(workdir, "mo-run", {last: 1})
    resumed = hpo.resume("mo-run")
    again = resumed.trials()
    assert len(again) == 6 and (again["status"] == "COMPLETED").all()
    assert sorted(resumed.pareto()["trial_id"]) == sorted(front["trial_id"])
