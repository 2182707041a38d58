from pathlib import Path

import pytest
import yaml

from hpo.errors import SpecError
from hpo.spec import DEFAULT_NUM_SAMPLES, Spec, load_spec
from tests.conftest import SEARCH_SPACES, tiny_spec


@pytest.mark.parametrize("path", sorted(SEARCH_SPACES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_specs_are_valid(path: Path):
    spec = load_spec(path)
    assert spec.name == path.stem


def test_spec_is_frozen():
    spec = load_spec(tiny_spec())
    with pytest.raises(ValueError):
        spec.name = "other"  # type: ignore[misc]


def test_name_defaults_to_the_file_stem(tmp_path: Path):
    path = tmp_path / "my_search.yaml"
    data = tiny_spec()
    del data["name"]
    path.write_text(yaml.safe_dump(data))
    assert load_spec(path).name == "my_search"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


# (yaml text, expected fragment of the message) — each must name file, line and dotted key.
BAD_SPECS = [
    (
        "name: x\noptimizer:\n  lrr: 0.1\n",
        "spec.yaml:3: optimizer.lrr: unknown key; did you mean 'lr'?",
    ),
    ("name: x\nmetirc: val_loss\n", "spec.yaml:2: metirc: unknown key; did you mean 'metric'?"),
    ("name: x\nmode: maximize\n", "spec.yaml:2: mode: Input should be 'min' or 'max'"),
    (
        "name: x\nsearcher: bayes\n",
        "spec.yaml:2: searcher: unknown name 'bayes'; expected one of: 'grid', 'random', 'optuna'",
    ),
    (
        "name: x\nscheduler: {name: asha, grace: 2}\n",
        "spec.yaml:2: scheduler.grace: unknown key; did you mean 'grace_period'?",
    ),
    (
        "name: x\nbudget:\n  num_samples: 0\n",
        "spec.yaml:3: budget.num_samples: Input should be greater than or equal to 1 (got 0)",
    ),
    (
        "name: x\nresources: {cpu: -1}\n",
        "spec.yaml:2: resources.cpu: Input should be greater than 0",
    ),
    (
        "name: x\ndata: {name: mnist}\n",
        "spec.yaml:2: data.name: unknown dataset 'mnist'; available: ",
    ),
    (
        "name: x\nspace:\n  optimizer.lr: {type: float, low: 1, high: 0.1}\n",
        "spec.yaml:3: space.optimizer.lr: `low <= high` must hold, but got (low=1.0, high=0.1)",
    ),
    (
        "name: x\nspace:\n  optimizer.lr: {type: float, low: 0, high: 1, log: true}\n",
        "space.optimizer.lr: a log scale needs `low > 0`",
    ),
    (
        "name: x\nspace:\n  model.hidden_size: {type: int, low: 8, high: 30, step: 8}\n",
        "`high - low` must be a multiple of `step`, but got (low=8, high=30, step=8); try high=24",
    ),
    (
        "name: x\nspace:\n  optimizer.lr: {type: normal}\n",
        "space.optimizer.lr: unknown type 'normal'",
    ),
    (
        "name: x\nspace:\n  optimizer.lrate: {type: float, low: 0.1, high: 1}\n",
        "spec.yaml:3: space.optimizer.lrate: optimizer.lrate is not a key of the trainable's config; did you mean 'lr'?",
    ),
    (
        "name: x\nspace:\n  model.dropout: {type: float, low: 0, high: 1.5}\n",
        "spec.yaml:3: space.model.dropout: the value 1.5 is invalid for model.dropout: Input should be less than 1",
    ),
    ("name: x\nmetric: val_acc\n", "spec.yaml:2: metric: the trainable does not report 'val_acc'"),
    (
        "name: x\nsearcher: grid\nspace:\n  optimizer.lr: {type: float, low: 0.1, high: 1}\n",
        "spec.yaml:4: space.optimizer.lr: grid search needs a finite set of values",
    ),
    (
        "name: x\nsearcher: grid\nbudget: {num_samples: 5}\nspace:\n  model.num_layers: {type: int, low: 1, high: 3}\n",
        "spec.yaml:3: budget.num_samples: grid search runs every point of its grid once (3 points)",
    ),
    (
        "name: x\ntraining: {epochs: 5}\nscheduler: {name: asha, grace_period: 8}\n",
        "spec.yaml:3: scheduler.grace_period: grace_period=8 exceeds the last rung (5 epochs)",
    ),
    ("- a\n- b\n", "a spec must be a mapping"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_SPECS)
def test_bad_specs_name_file_line_and_key(tmp_path: Path, text: str, expected: str):
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text))
    assert expected in str(info.value)
    assert info.value.exit_code == 2


def test_every_problem_is_reported_at_once(tmp_path: Path):
    path = write(tmp_path, "name: x\nmetirc: a\nbudget: {num_samples: 0}\noptimizer: {lrr: 1}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert len(info.value.issues) == 3


def test_missing_file(tmp_path: Path):
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_overrides_are_yaml_typed_and_validated():
    spec = load_spec(
        tiny_spec(),
        [
            "budget.num_samples=7",
            "searcher=optuna",
            "space.optimizer.lr.high=0.5",
            "optimizer.lr=1e-2",
        ],
    )
    assert spec.budget.num_samples == 7
    assert spec.searcher.name == "optuna"
    assert spec.space["optimizer.lr"].high == 0.5
    assert spec.optimizer.lr == 0.01


def test_override_adds_a_space_parameter():
    spec = load_spec(tiny_spec(), ["space.model.dropout={type: float, low: 0, high: 0.5}"])
    assert spec.space["model.dropout"].high == 0.5


def test_bad_override_names_the_override():
    with pytest.raises(
        SpecError, match=r"budget.num_samples: .*\(from --set budget.num_samples=-1\)"
    ):
        load_spec(tiny_spec(), ["budget.num_samples=-1"])
    with pytest.raises(SpecError, match="must look like key=value"):
        load_spec(tiny_spec(), ["budget.num_samples"])


def test_dict_source_is_not_modified():
    data = tiny_spec()
    load_spec(data, {"budget.num_samples": 9})
    assert data["budget"]["num_samples"] == 3


def test_num_trials():
    assert load_spec(tiny_spec(budget={})).num_trials() == DEFAULT_NUM_SAMPLES
    grid = tiny_spec(
        searcher="grid",
        budget={},
        space={
            "model.num_layers": {"type": "int", "low": 1, "high": 3},
            "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        },
    )
    assert load_spec(grid).num_trials() == 6


def test_base_config_is_what_the_trainable_reads():
    spec = load_spec(tiny_spec())
    config = spec.base_config()
    assert config["optimizer"]["lr"] == 3e-3
    assert config["seed"] == 0
    assert isinstance(spec, Spec)
