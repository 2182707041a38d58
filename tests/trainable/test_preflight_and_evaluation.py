"""What the driver runs beside the trainable, without Ray: the checks before a search, and the
best trial's evaluation on the test split after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.errors import SpecError
from hpo.spec import Spec, load_spec
from hpo.trainable.checkpoint import save_checkpoint
from hpo.trainable.evaluation import evaluate_on_test
from hpo.trainable.loop import Trainer
from hpo.trainable.preflight import check_user_code, load_data

CONFIG = {"data": {"test_fraction": 0.2}, "training": {"epochs": 3}, "seed": 1}


@pytest.mark.usefixtures("one_torch_thread")
def test_the_test_split_metrics_are_those_of_the_trial_at_its_epoch(digits, tmp_path: Path):
    trainer = Trainer(CONFIG, digits)
    for metrics in trainer.run():
        if metrics["epoch"] == 2:
            break
    expected = trainer.test()
    save_checkpoint(trainer.state_dict(), tmp_path)
    # Trained again to the same epoch (trials are seeded by their config), or restored.
    again = evaluate_on_test(CONFIG, digits, checkpoint=None, epochs=2)
    assert again.metrics == pytest.approx(expected)
    # A checkpoint wins over training again (here it holds epoch 2, not epoch 1).
    restored = evaluate_on_test(CONFIG, digits, checkpoint=str(tmp_path), epochs=1)
    assert restored.metrics == pytest.approx(expected)
    assert restored.report == again.report


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"trainable": "no_such_module:train"}, "trainable: cannot load 'no_such_module:train'"),
        ({"model": {"name": "no_such_module:net"}}, "model.name: cannot load"),
        ({"trainable": "json:nothing"}, "module 'json' has no attribute 'nothing'"),
    ],
)
def test_user_code_that_cannot_be_loaded_is_a_spec_error(keys: dict, message: str):
    # Validation imports it already; the run's own check says the same of a stored spec.
    with pytest.raises(SpecError, match=message):
        load_spec({"name": "x", "metric": "val_loss", **keys})
    spec = Spec.model_validate({"name": "x", "metric": "val_loss", **keys})
    with pytest.raises(SpecError, match=message):
        check_user_code(spec)


def test_the_users_function_or_none_for_hpos_trainable():
    import json

    assert check_user_code(load_spec({"name": "x", "trainable": "json:dumps"})) is json.dumps
    assert check_user_code(load_spec({"name": "x"})) is None


def test_data_that_cannot_be_loaded_is_a_spec_error(tmp_path: Path):
    data = {"name": "file", "path": str(tmp_path / "none.csv"), "target": "y", "task": "regression"}
    with pytest.raises(SpecError, match="data: cannot load the data"):
        load_data(load_spec({"name": "x", "data": data}))
