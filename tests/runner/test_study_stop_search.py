"""`budget.stop_when` end to end: a user's function, Ray, the store, and `hpo resume`."""

from __future__ import annotations

import time

import pytest

import hpo
from hpo.errors import UsageError
from hpo.store import TrialStatus

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("workdir")]


def slow_quadratic(config: dict) -> None:
    """'loss' falls towards (x - 3)^2; each report takes a while, so trials overlap."""
    for step in range(1, config["steps"] + 1):
        time.sleep(config["pause"])
        hpo.report({"loss": (config["x"] - 3) ** 2 + 1.0 / step})


@pytest.mark.usefixtures("ray_session")
def test_stop_when_ends_the_search_completed_and_resume_needs_continue():
    kwargs = {
        "config": {"steps": 4, "pause": 0.3},
        "space": {"x": {"type": "float", "low": -5.0, "high": 10.0}},
        "metric": "loss",
        "mode": "min",
        "budget__num_samples": 12,
        "budget__max_concurrent": 2,
        # Every trial ends below 100: the first one to end stops the search.
        "budget__stop_when": {"reaches": 100.0},
    }
    experiment = hpo.tune(slow_quadratic, **kwargs)
    assert experiment.status == "COMPLETED"
    reason = experiment.row["stop_reason"]
    assert reason.startswith("loss reached 100 (budget.stop_when.reaches)")
    trials = experiment.trials()
    assert len(trials) < 12
    assert set(trials["status"]) <= {TrialStatus.COMPLETED.value, TrialStatus.INTERRUPTED.value}
    assert (trials["status"] == TrialStatus.COMPLETED.value).sum() >= 1

    with pytest.raises(UsageError, match="had stopped early, as its spec asked: loss reached"):
        hpo.resume("slow_quadratic", function=slow_quadratic)
    resumed = hpo.resume("slow_quadratic", function=slow_quadratic, go_on=True)
    assert resumed.status == "COMPLETED" and resumed.row["stop_reason"] is None
    after = resumed.trials()
    assert len(after) == 12  # on to its budget
    assert set(after["status"]) == {TrialStatus.COMPLETED.value}
