"""Your own training function through hpo.tune and through a spec's `trainable:`."""

import sys
from pathlib import Path

import pytest
import yaml

import hpo
from hpo.errors import HpoDeprecationWarning, SpecError
from hpo.store import TrialStatus
from hpo.trainable.user_function import local_reports

pytestmark = pytest.mark.usefixtures("workdir")


def quadratic(config: dict) -> None:
    """A training function: 'loss' falls towards (x - 3)^2 over `steps` epochs."""
    x, steps = config["x"], config["steps"]
    for step in range(1, steps + 1):
        hpo.report({"loss": (x - 3) ** 2 + 1.0 / step, "step": step})


def test_report_outside_a_search_keeps_the_metrics():
    local_reports.clear()
    quadratic({"x": 1.0, "steps": 3})
    assert [r["step"] for r in local_reports] == [1, 2, 3]


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_tune_searches_a_users_function_into_the_store():
    experiment = hpo.tune(
        quadratic,
        config={"steps": 6},
        space={"x": {"type": "float", "low": -5.0, "high": 10.0}},
        metric="loss",
        mode="min",
        searcher={"name": "optuna", "n_startup_trials": 3},
        scheduler={"name": "asha", "max_t": 6, "grace_period": 1, "reduction_factor": 2},
        budget__num_samples=8,
    )
    assert experiment.name == "quadratic"
    trials = hpo.load("quadratic").trials()
    assert len(trials) == 8
    assert set(trials["status"]) <= {TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value}
    for row in trials.itertuples():  # pruned exactly when stopped before the 6th report
        assert (row.status == "PRUNED") == (row.iterations < 6)
    assert experiment.spec["trainable"] == f"{quadratic.__module__}:quadratic"
    best = experiment.best(1).iloc[0]
    assert best["best.loss"] == pytest.approx(
        (best["params.x"] - 3) ** 2 + 1.0 / best["iterations"]
    )


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_asha_needs_no_max_t_for_a_users_function():
    """Rungs at 1, 2, 4, ... without end: trailing trials stop, and a trial that is never
    behind runs all its reports (no last rung cuts it)."""
    experiment = hpo.tune(
        quadratic,
        name="no-max-t",
        config={"steps": 8},
        space={"x": {"type": "float", "low": -5.0, "high": 10.0}},
        metric="loss",
        mode="min",
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
        budget__num_samples=8,
        budget__max_concurrent=2,
    )
    trials = experiment.trials()
    assert set(trials["status"]) == {TrialStatus.COMPLETED.value, TrialStatus.PRUNED.value}
    for row in trials.itertuples():
        assert (row.status == "PRUNED") == (row.iterations < 8)


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_a_spec_names_a_users_function(workdir: Path, monkeypatch: pytest.MonkeyPatch):
    (workdir / "mytrain.py").write_text(
        "import hpo\n"
        "def train(config):\n"
        "    for epoch in range(1, 4):\n"
        "        hpo.report({'score': config['a'] * epoch})\n"
    )
    monkeypatch.syspath_prepend(str(workdir))
    spec = {
        "name": "by-reference",
        "metric": "score",
        "mode": "max",
        "trainable": "mytrain:train",
        "config": {"a": 1},
        "space": {"a": {"type": "categorical", "choices": [1, 2]}},
        "searcher": "grid",
    }
    experiment = hpo.run(spec)
    assert sorted(experiment.trials()["best.score"]) == [3.0, 6.0]
    sys.modules.pop("mytrain", None)


@pytest.fixture
def specs(monkeypatch: pytest.MonkeyPatch) -> list:
    """The specs `hpo.tune` hands the runner, which then runs nothing."""
    import hpo.runner._runner

    seen: list = []
    monkeypatch.setattr(
        hpo.runner._runner, "execute", lambda spec, **options: seen.append((spec, options))
    )
    return seen


QUADRATIC_SEARCH = {
    "config": {"steps": 6},
    "space": {"x": {"type": "float", "low": -5.0, "high": 10.0}},
    "metric": "loss",
    "mode": "max",
    "searcher": {"name": "optuna", "n_startup_trials": 3},
    "scheduler": {"name": "asha", "max_t": 6, "grace_period": 1},
    "seed": 4,
    "resources": {"cpu": 0.5},
    "store": "sqlite:///elsewhere.db",
}


def test_tune_takes_spec_keys_as_run_does(specs: list):
    hpo.tune(
        quadratic,
        **QUADRATIC_SEARCH,
        budget__num_samples=8,
        budget__time_budget_s=60,
        space__y={"type": "int", "low": 1, "high": 3},
    )
    [(spec, options)] = specs
    assert spec.name == "quadratic" and spec.trainable == f"{__name__}:quadratic"
    assert (spec.budget.num_samples, spec.budget.time_budget_s) == (8, 60)
    assert set(spec.space) == {"x", "y"} and spec.mode.value == "max" and spec.seed == 4
    assert options["function"] is quadratic
    assert options["store_url"] == "sqlite:///elsewhere.db"


def test_tune_starts_from_a_spec_as_a_dict_or_a_file(specs: list, tmp_path: Path):
    hpo.tune(quadratic, {"metric": "loss", "budget": {"num_samples": 2}}, budget__fail_fast=0)
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"metric": "loss", "config": {"steps": 2}}))
    hpo.tune(quadratic, path, name="named")
    hpo.tune(quadratic, specs[0][0], budget__num_samples=3)  # a loaded Spec
    (by_dict, _), (by_file, _), (by_spec, _) = specs
    assert by_dict.name == "quadratic" and by_dict.budget.num_samples == 2
    assert by_dict.budget.fail_fast == 0
    assert by_file.name == "named" and by_file.config == {"steps": 2}
    assert by_file.trainable == f"{__name__}:quadratic"
    assert by_spec.budget.num_samples == 3 and by_spec.budget.fail_fast == 0


def test_the_old_keywords_give_the_same_spec_with_a_warning_for_the_renamed(specs: list):
    with pytest.warns(HpoDeprecationWarning) as warned:
        hpo.tune(
            quadratic,
            **QUADRATIC_SEARCH,
            num_samples=8,
            max_concurrent=2,
            time_budget_s=60,
            fail_fast=0,
            name=None,  # the old defaults (None: not given) still mean the defaults
            ray=None,
        )
    assert [str(w.message).split(";")[0] for w in warned] == [
        f"hpo.tune({key}=...) is deprecated and goes in the next release"
        for key in ("num_samples", "max_concurrent", "time_budget_s", "fail_fast")
    ]
    assert "use hpo.tune(..., budget__num_samples=...)" in str(warned[0].message)
    assert warned[0].filename == __file__  # it points at the caller's line
    assert issubclass(HpoDeprecationWarning, FutureWarning)  # shown to users by default
    hpo.tune(  # the same search in the new form: no warning (the suite errors on one)
        quadratic,
        **QUADRATIC_SEARCH,
        budget__num_samples=8,
        budget__max_concurrent=2,
        budget__time_budget_s=60,
        budget__fail_fast=0,
    )
    (old, _), (new, _) = specs
    assert old == new


def test_run_overrides_a_loaded_spec_of_a_users_function(specs: list):
    spec = hpo.load_spec({"name": "x", "metric": "loss", "trainable": f"{__name__}:quadratic"})
    hpo.run(spec, name="y")  # the loaded spec's defaults must not come back as its settings
    [(run, _)] = specs
    assert run.name == "y" and run.trainable == spec.trainable


def test_tune_with_a_bad_override_is_a_spec_error(specs: list):
    with pytest.raises(SpecError, match=r"budget\.num_samples"):
        hpo.tune(quadratic, metric="loss", budget__num_samples=0)
    assert specs == []


def test_a_user_trainable_spec_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Validation imports the function to tell it from a Pipeline subclass.
    (tmp_path / "mytrain.py").write_text("def train(config):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mytrain", raising=False)
    body = {
        "name": "x",
        "metric": "anything",
        "trainable": "mytrain:train",
        "model": {"hidden_size": 3},
        "scheduler": "asha",
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(SpecError) as info:
        hpo.load_spec(path)
    message = str(info.value)
    assert "model: `model` configures hpo's own trainable" in message
    # ASHA needs no max_t for a user's function: its rungs go on without end.
    assert "scheduler" not in message


def test_an_unimportable_function_is_a_spec_error_before_anything_runs(workdir: Path):
    spec = {"name": "x", "metric": "m", "trainable": "no_such_module:train"}
    with pytest.raises(SpecError, match="trainable: cannot load 'no_such_module:train'"):
        hpo.run(spec)
    assert not (workdir / "hpo-results").exists()


def test_hpo_report_stays_the_function_after_the_html_report_is_imported():
    import hpo.results._report  # a submodule must not shadow the public function `hpo.report`

    assert callable(hpo.report) and hpo.report.__module__ == "hpo.trainable.user_function"
    import hpo.resuming._plan  # nor `hpo.resume`

    assert callable(hpo.resume) and hpo.resume.__module__ == "hpo.runner._runner"


def flaky(config: dict) -> None:
    """Checkpoints at even epochs; its first attempt dies in epoch 4, as a preempted job would."""
    import tempfile

    start, restored = 1, hpo.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as directory:
            start = int(Path(directory, "epoch").read_text()) + 1
    for epoch in range(start, 6):
        if epoch == 4 and restored is None:
            raise RuntimeError("preempted")
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "epoch").write_text(str(epoch))
            hpo.report(
                {"loss": 1.0 / epoch, "epoch": epoch},
                checkpoint=directory if epoch % 2 == 0 else None,
            )


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_a_failed_trial_is_retried_from_its_checkpoint():
    spec = {
        "name": "flaky",
        "metric": "loss",
        "mode": "min",
        "trainable": f"{flaky.__module__}:flaky",
        "config": {},
        "budget": {"num_samples": 1, "max_failures": 1},
    }
    experiment = hpo.run(spec)
    [trial] = experiment.trials().itertuples()
    assert trial.status == "COMPLETED" and trial.iterations == 5
    history = experiment.history()
    # epoch 3 ran twice (before the failure, and again after the restore from epoch 2): one row
    assert list(history["iteration"]) == [1, 2, 3, 4, 5]
    assert list(history["epoch"]) == [1, 2, 3, 4, 5]


def test_tune_tells_the_spec_what_it_was_given_without_importing_it(specs: list):
    """A local function or Pipeline subclass has no importable reference: the spec is told."""
    from hpo.spec import TrainableKind
    from tests.spec.user_modules import PIPELINE_BASE

    def local(config: dict) -> None:
        hpo.report({"loss": 1.0})

    namespace: dict = {}
    exec(PIPELINE_BASE + "class Local(Pipeline):\n    pass\n", namespace)
    hpo.tune(local, metric="loss")
    hpo.tune(namespace["Local"], {"name": "local-pipeline", "training": {"epochs": 2}})
    (function, _), (pipeline, _) = specs
    assert function.trainable_kind is TrainableKind.FUNCTION
    assert pipeline.is_pipeline and pipeline.base_config()["training"]["epochs"] == 2
