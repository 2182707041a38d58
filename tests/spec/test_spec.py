from pathlib import Path

import pytest
import yaml

from hpo.errors import SpecError
from hpo.spec._spec import DEFAULT_NUM_SAMPLES, Spec, load_spec
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


# The validation catalogue: (spec text, the line and dotted key it must name, a fragment of the
# message that says what was expected, what was found or how to fix it). One row per case.
BAD_SPECS = [
    # distributions
    (
        "space:\n  optimizer.lr: {type: float, low: 1, high: 0.1}",
        "3: space.optimizer.lr",
        "`low <= high` must hold, but got (low=1.0, high=0.1)",
    ),
    (
        "space:\n  optimizer.lr: {type: float, low: 0, high: 1, log: true}",
        "3: space.optimizer.lr",
        "a log scale needs `low > 0`, but got low=0.0",
    ),
    (
        "space:\n  model.hidden_size: {type: int, low: 8, high: 32, step: 0}",
        "3: space.model.hidden_size",
        "`step` must be positive, but got step=0",
    ),
    (
        "space:\n  model.hidden_size: {type: int, low: 8, high: 30, step: 8}",
        "3: space.model.hidden_size",
        "`high - low` must be a multiple of `step`, but got (low=8, high=30, step=8); try high=24",
    ),
    (
        "space:\n  optimizer.lr: {type: float, low: 0.1, high: 1.0, log: true, step: 0.1}",
        "3: space.optimizer.lr",
        "`log` and `step` cannot be combined; drop one of them",
    ),
    (
        "space:\n  optimizer.lr: {type: float, low: .nan, high: 1}",
        "3: space.optimizer.lr.low",
        "Input should be a finite number (got nan)",
    ),
    (
        "space:\n  optimizer.lr: {type: float, low: 0.1, high: .inf}",
        "3: space.optimizer.lr.high",
        "Input should be a finite number (got inf)",
    ),
    (
        "space:\n  optimizer.name: {type: categorical, choices: []}",
        "3: space.optimizer.name.choices",
        "List should have at least 1 item",
    ),
    (
        "space:\n  optimizer.name: {type: categorical, choices: [sgd, adam, sgd]}",
        "3: space.optimizer.name",
        "`choices` must be distinct, but 'sgd' appears twice",
    ),
    (
        "space:\n  optimizer.lr: {type: normal, low: 0, high: 1}",
        "3: space.optimizer.lr",
        "unknown type 'normal'; expected one of: 'float', 'int', 'categorical', 'grid', 'constant'",
    ),
    (
        "space:\n  optimizer.lr: {type: float, low: 0.1, high: 1, scale: 2}",
        "3: space.optimizer.lr.scale",
        "unknown key; valid keys here: high, log, low, step, type, when",
    ),
    (
        "space:\n  optimizer.name: {type: grid, values: [sgd, adam]}",
        "3: space.optimizer.name",
        "`type: grid` is for the grid searcher, not random; use `type: categorical`",
    ),
    # unknown keys, with a "did you mean"
    ("metirc: val_loss", "2: metirc", "unknown key; did you mean 'metric'?"),
    ("optimizer:\n  lrr: 0.1", "3: optimizer.lrr", "unknown key; did you mean 'lr'?"),
    (
        "searcher: {name: optuna, n_startup: 3}",
        "2: searcher.n_startup",
        "unknown key; did you mean 'n_startup_trials'?",
    ),
    (
        "scheduler: {name: asha, grace: 2}",
        "2: scheduler.grace",
        "unknown key; did you mean 'grace_period'?",
    ),
    ("budget: {num_sample: 2}", "2: budget.num_sample", "unknown key; did you mean 'num_samples'?"),
    # wrong types
    (
        "budget: {num_samples: many}",
        "2: budget.num_samples",
        "Input should be a valid integer, unable to parse string as an integer (got 'many')",
    ),
    (
        "training: {epochs: 2.5}",
        "2: training.epochs",
        "Input should be a valid integer, got a number with a fractional part (got 2.5)",
    ),
    ("space: [optimizer.lr]", "2: space", "Input should be a valid dictionary"),
    # budget and resources
    (
        "budget:\n  num_samples: 0",
        "3: budget.num_samples",
        "Input should be greater than or equal to 1 (got 0)",
    ),
    (
        "budget: {max_concurrent: 0}",
        "2: budget.max_concurrent",
        "Input should be greater than or equal to 1 (got 0)",
    ),
    (
        "budget: {time_budget_s: -5}",
        "2: budget.time_budget_s",
        "Input should be greater than 0 (got -5)",
    ),
    ("resources: {cpu: 0}", "2: resources.cpu", "Input should be greater than 0 (got 0)"),
    (
        "resources: {gpu: -1}",
        "2: resources.gpu",
        "Input should be greater than or equal to 0 (got -1)",
    ),
    ("resources: {workers: 0}", "2: resources.workers", "greater than or equal to 1 (got 0)"),
    # (a user's function with several workers: see tests/spec/test_user_code.py)
    # the loader: num_workers is a non-negative integer, not a float or a string
    (
        "loader:\n  num_workers: -1",
        "3: loader.num_workers",
        "Input should be greater than or equal to 0 (got -1)",
    ),
    (
        "loader: {num_workers: 2.5}",
        "2: loader.num_workers",
        "Input should be a valid integer (got 2.5)",
    ),
    (
        "loader: {num_workers: '2'}",
        "2: loader.num_workers",
        "Input should be a valid integer (got '2')",
    ),
    (
        "loader: {prefetch_factor: 2}",
        "2: loader",
        "prefetch_factor need loader processes; set num_workers above 0",
    ),
    # data keys that do not apply to the dataset, each at its own key
    (
        "data:\n  name: digits\n  imge_size: 32",
        "4: data.imge_size",
        "unknown key for dataset 'digits'; did you mean 'image_size'?",
    ),
    (
        "data: {name: iris, noise: 0.1}",
        "2: data.noise",
        "does not apply to dataset 'iris'",
    ),
    # the Ray cluster
    (
        "ray:\n  address: ray://head:10001",
        "3: ray.address",
        "Ray Client (ray://) runs the search's driver on the head node",
    ),
    ("ray: {address: head}", "2: ray.address", "'head' is not a Ray address; use 'auto'"),
    ("ray: {storage: /nfs}", "2: ray.storage", "unknown key; did you mean 'storage_path'?"),
    # metric and mode
    ("mode: maximize", "2: mode", "Input should be 'min' or 'max' (got 'maximize')"),
    (
        "metric: val_acc",
        "2: metric",
        "the trainable does not report 'val_acc' for dataset 'digits'; choose one of: ",
    ),
    # names from registries, listing the valid ones
    (
        "searcher: bayes",
        "2: searcher",
        "unknown searcher 'bayes'; available: grid, optuna, random",
    ),
    (
        "scheduler: hyperbnd",
        "2: scheduler",
        "unknown scheduler 'hyperbnd'; did you mean 'hyperband'? available: asha, fifo, hyperband, median",
    ),
    (
        "searcher: {name: optuna, sampler: cmaes}",
        "2: searcher.sampler",
        "unknown Optuna sampler 'cmaes'; available: gp, nsga2, nsga3, qmc, random, tpe (got 'cmaes')",
    ),
    # an option the sampler would not read
    (
        "searcher: {name: optuna, sampler: qmc, n_startup_trials: 5, multivariate: false}",
        "2: searcher",
        "multivariate, n_startup_trials do not apply to sampler 'qmc'",
    ),
    (
        "searcher: {name: optuna, sampler: gp, multivariate: false}",
        "2: searcher",
        "multivariate does not apply to sampler 'gp'; it reads: n_startup_trials",
    ),
    (
        "data: {name: mnist}",
        "2: data.name",
        "unknown dataset 'mnist'; available: breast_cancer, classification, diabetes, digits, file, image_folder, iris",
    ),
    (
        "model: {name: resnet}",
        "2: model.name",
        "unknown model 'resnet'; available: cnn, mlp, or 'package.module:function'",
    ),
    (
        "optimizer: {name: adagrad}",
        "2: optimizer.name",
        "unknown optimizer 'adagrad'; available: adam, adamw, rmsprop, sgd",
    ),
    (
        "lr_scheduler: {name: cyclic}",
        "2: lr_scheduler.name",
        "unknown LR scheduler 'cyclic'; available: cosine, cosine_restarts, exponential, none, "
        "onecycle, plateau",
    ),
    # grid search
    (
        "searcher: grid\nspace:\n  optimizer.lr: {type: float, low: 0.1, high: 1}",
        "4: space.optimizer.lr",
        "is continuous (float from 0.1 to 1.0), but grid search needs a finite set of values; add `step`",
    ),
    (
        "searcher: grid\nbudget: {num_samples: 5}\nspace:\n  model.num_layers: {type: int, low: 1, high: 3}",
        "3: budget.num_samples",
        "grid search runs every point of its grid once (3 points); remove budget.num_samples or set it to 3",
    ),
    # ASHA
    (
        "training: {epochs: 5}\nscheduler: {name: asha, grace_period: 8}",
        "3: scheduler.grace_period",
        "grace_period=8 exceeds the last rung (5 epochs); set it to at most 5",
    ),
    (
        "scheduler: {name: asha, reduction_factor: 1}",
        "2: scheduler.reduction_factor",
        "Input should be greater than 1 (got 1)",
    ),
    (
        "training: {epochs: 5}\nscheduler: {name: asha, max_t: 9}",
        "3: scheduler.max_t",
        "max_t=9 exceeds training.epochs=5",
    ),
    (
        "training: {epochs: 5}\nscheduler: {name: hyperband, grace_period: 8}",
        "3: scheduler.grace_period",
        "grace_period=8 exceeds the last rung (5 epochs); set it to at most 5",
    ),
    (
        "training: {epochs: 8}\nscheduler: {name: hyperband, brackets: 4}",
        "3: scheduler.brackets",
        "brackets=4: the last bracket's first rung (epoch 27) is past the last rung (8 epochs), "
        "so its trials would never be judged; set brackets to at most 2",
    ),
    (
        "scheduler: {name: hyperband, brackets: 0}",
        "2: scheduler.brackets",
        "Input should be greater than or equal to 1 (got 0)",
    ),
    # study-level stopping
    (
        "budget:\n  stop_when: {no_improvement: {trials: -3}}",
        "3: budget.stop_when.no_improvement.trials",
        "Input should be greater than or equal to 1 (got -3)",
    ),
    (
        "budget:\n  stop_when: {no_improvement: {trials: 5, min_delta: -0.1}}",
        "3: budget.stop_when.no_improvement.min_delta",
        "Input should be greater than or equal to 0 (got -0.1)",
    ),
    # PBT
    (
        "space:\n  optimizer.lr: {type: float, low: 0.001, high: 0.1}\nscheduler: {name: pbt, perturbation_interval: 4}",
        "4: scheduler",
        "PBT needs checkpoints: at each perturbation a trial goes on from another trial's "
        "checkpoint of that epoch; set checkpoint.every to 4",
    ),
    (
        "checkpoint: {every: 3}\nspace:\n  optimizer.lr: {type: float, low: 0.001, high: 0.1}\nscheduler: {name: pbt, perturbation_interval: 4}",
        "5: scheduler.perturbation_interval",
        "perturbation_interval=4 is not a multiple of checkpoint.every=3",
    ),
    (
        "checkpoint: {every: 2}\nspace:\n  optimizer.lr: {type: float, low: 0.001, high: 0.1}\nscheduler: {name: pbt, perturbation_interval: 4, mutate: [optimizer.momentum]}",
        "5: scheduler.mutate",
        "'optimizer.momentum' has no distribution in `space` to mutate within",
    ),
    (
        "checkpoint: {every: 2}\nspace:\n  optimizer.lr: 0.01\nscheduler: {name: pbt, perturbation_interval: 4, mutate: [optimizer.lr]}",
        "5: scheduler.mutate",
        "'optimizer.lr' has a single value in `space`: PBT has no other value to move it to",
    ),
    (
        "checkpoint: {every: 2}\nspace:\n  model.hidden_size: {type: int, low: 8, high: 64}\nscheduler: {name: pbt, perturbation_interval: 4, mutate: [model.hidden_size]}",
        "5: scheduler.mutate",
        "PBT cannot change 'model.hidden_size' while a trial trains",
    ),
    (
        "checkpoint: {every: 2}\nspace:\n  model.hidden_size: {type: int, low: 8, high: 64}\nscheduler: {name: pbt, perturbation_interval: 4}",
        "5: scheduler.mutate",
        "PBT has nothing to mutate: no key of `space` is under optimizer.",
    ),
    # median stopping
    (
        "scheduler: {name: median, min_samples_required: 0}",
        "2: scheduler.min_samples_required",
        "Input should be greater than or equal to 1 (got 0)",
    ),
    # conditions
    (
        "space:\n  optimizer.momentum: {type: float, low: 0, high: 0.9, when: {optimizer.nam: sgd}}",
        "3: space.optimizer.momentum.when",
        "`when` names 'optimizer.nam', which is not a parameter of `space`",
    ),
    (
        "space:\n  optimizer.lr: {type: float, low: 0.1, high: 1}\n  optimizer.momentum: {type: float, low: 0, high: 0.9, when: {optimizer.lr: 0.5}}",
        "4: space.optimizer.momentum.when",
        "`when` needs a categorical parent, but 'optimizer.lr' is float",
    ),
    (
        "space:\n  optimizer.name: {type: categorical, choices: [sgd, adam]}\n  optimizer.momentum:\n    type: float\n    low: 0\n    high: 0.9\n    when: {optimizer.name: sdg}",
        "8: space.optimizer.momentum.when",
        "`when` expects 'optimizer.name' to be 'sdg', which is not among its values ['sgd', 'adam']",
    ),
    # space keys are checked against the trainable's config
    (
        "space:\n  optimizer.lrate: {type: float, low: 0.1, high: 1}",
        "3: space.optimizer.lrate",
        "optimizer.lrate is not a key of the trainable's config; did you mean 'lr'?",
    ),
    (
        "space:\n  lr: {type: float, low: 0.1, high: 1}",
        "3: space.lr",
        "lr is not a key of the trainable's config",
    ),
    (
        "space:\n  model.dropout: {type: float, low: 0, high: 1.5}",
        "3: space.model.dropout",
        "the value 1.5 is invalid for model.dropout: Input should be less than 1",
    ),
    # a promise that cannot be kept: a resumed trial's persistent workers draw other numbers
    (
        "loader: {num_workers: 2, persistent_workers: true}\ntraining: {deterministic: true}",
        "3: training",
        "training.deterministic cannot repeat a resumed trial's random transforms with "
        "loader.persistent_workers: true",
    ),
    # experiment names become folder names
    (
        "name: runs/one",
        "1: name",
        "'runs/one' cannot be an experiment name: names become folder names",
    ),
    ("name: a..b", "1: name", "without '..'"),
    ("name: 'my run*'", "1: name", "use letters, digits, '_', '-' and '.'"),
    # the document itself
    ("- a\n- b", "spec.yaml:1", "a spec must be a mapping of keys to values"),
    (
        "optimizer: {lr: 1}\noptimizer: {lr: 2}",
        "3: optimizer",
        "duplicate key (first defined on line 2); keep one",
    ),
    ("optimizer: !!python/name:os.system", "2:", "no Python tags"),
]


def _spec_text(body: str) -> str:
    return body if body.startswith(("- ", "name:")) else "name: x\n" + body


@pytest.mark.parametrize(("body", "where", "message"), BAD_SPECS)
def test_validation_catalogue(tmp_path: Path, body: str, where: str, message: str):
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, _spec_text(body)))
    text = str(info.value)
    assert f"spec.yaml:{where}" in text if not where.startswith("spec.yaml") else where in text
    assert message in text
    assert info.value.exit_code == 2


def test_the_catalogue_covers_every_case():
    assert len(BAD_SPECS) >= 45


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


def test_base_config_holds_only_the_options_of_the_chosen_kinds():
    """digits + mlp + no LR schedule: none of the keys of other datasets, models or LR
    schedulers, which `hpo best` and the report used to print."""
    config = load_spec(tiny_spec()).base_config()
    assert not {"n_samples", "n_features", "n_informative", "noise"} & set(config["data"])
    assert not {"channels", "num_blocks", "kernel_size", "params"} & set(config["model"])
    assert config["lr_scheduler"] == {"name": "none"}
    assert not {"momentum", "nesterov"} & set(config["optimizer"])


def test_searching_a_kind_keeps_the_options_the_space_or_the_user_sets():
    spec = load_spec(
        tiny_spec(
            lr_scheduler={"gamma": 0.5},
            space={
                "lr_scheduler.name": {"type": "categorical", "choices": ["none", "step"]},
                "lr_scheduler.step_size": {"type": "int", "low": 2, "high": 4},
                "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
                "optimizer.momentum": {
                    "type": "float",
                    "low": 0.5,
                    "high": 0.9,
                    "when": {"optimizer.name": "sgd"},
                },
            },
        )
    )
    config = spec.base_config()
    assert config["lr_scheduler"] == {"name": "none", "gamma": 0.5, "step_size": 10}
    # A trial of adam gets no momentum from the space: it keeps the default, not a bound.
    assert config["optimizer"]["momentum"] == 0.0
    assert "nesterov" not in config["optimizer"]


def test_a_dumped_spec_loads_as_the_same_spec():
    """What the store keeps of a spec (its dump, leaner now) is the spec that ran."""
    spec = load_spec(tiny_spec(optimizer={"name": "sgd", "momentum": 0.9}))
    again = load_spec(spec.model_dump(mode="json"))
    assert again == spec and again.base_config() == spec.base_config()


def test_the_schema_describes_names_from_the_registries():
    definitions = Spec.model_json_schema()["$defs"]
    assert definitions["OptimizerConfig"]["properties"]["name"]["description"] == (
        "sgd, adam, adamw, rmsprop or a class by import path ('package.module:Class')"
    )
    assert (
        "'package.module:function'"
        in (definitions["ModelConfig"]["properties"]["name"]["description"])
    )
    # Each option says which kinds read it: the registry's options, not a hand-kept list.
    assert definitions["OptimizerConfig"]["properties"]["momentum"]["description"] == (
        "for rmsprop, sgd"
    )
    optuna = definitions["OptunaSearcher"]["properties"]
    assert optuna["sampler"]["enum"] == ["gp", "nsga2", "nsga3", "qmc", "random", "tpe"]
    assert optuna["n_startup_trials"]["description"].endswith("; for gp, tpe")
    assert optuna["multivariate"]["description"] == "model parameters jointly; for tpe"


def test_overriding_the_searcher_name_chooses_another_searcher():
    spec = load_spec(SEARCH_SPACES / "digits_mlp.yaml", ["searcher.name=random"])
    assert spec.searcher.name == "random"  # optuna's options no longer apply, so they go
    spec = load_spec(
        tiny_spec(searcher="random"), ["searcher.n_startup_trials=3", "searcher.name=optuna"]
    )
    assert (spec.searcher.name, spec.searcher.n_startup_trials) == ("optuna", 3)
    spec = load_spec(
        tiny_spec(searcher="random"), ["searcher.name=optuna", "searcher.n_startup_trials=3"]
    )
    assert spec.searcher.n_startup_trials == 3


def test_overriding_a_distribution_type_keeps_its_condition():
    data = tiny_spec(
        space={
            "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]},
            "optimizer.momentum": {
                "type": "float",
                "low": 0.0,
                "high": 0.9,
                "when": {"optimizer.name": "sgd"},
            },
        }
    )
    spec = load_spec(
        data,
        [
            "space.optimizer.momentum.type=categorical",
            "space.optimizer.momentum.choices=[0.5, 0.9]",
        ],
    )
    assert spec.space["optimizer.momentum"].choices == [0.5, 0.9]
    assert spec.space["optimizer.momentum"].when == {"optimizer.name": "sgd"}


def test_grid_over_a_continuous_space_names_the_parameter():
    with pytest.raises(SpecError) as info:
        load_spec(SEARCH_SPACES / "digits_mlp.yaml", ["searcher.name=grid"])
    message = str(info.value)
    assert (
        "space.optimizer.lr: is continuous" in message
        and "space.model.dropout: is continuous" in message
    )


def test_constants_and_conditions_in_the_spec():
    spec = load_spec(
        tiny_spec(
            searcher="grid",
            budget={},
            space={
                "optimizer.name": {"type": "categorical", "choices": ["sgd", "adam"]},
                "optimizer.momentum": {
                    "type": "grid",
                    "values": [0.0, 0.9],
                    "when": {"optimizer.name": "sgd"},
                },
                "training.batch_size": 32,
            },
        )
    )
    assert spec.num_trials() == 3  # sgd x 2 momenta, adam
    assert spec.space["training.batch_size"].value == 32


def test_the_json_schema_describes_every_section():
    schema = Spec.model_json_schema()
    assert {
        "name",
        "metric",
        "mode",
        "space",
        "searcher",
        "scheduler",
        "budget",
        "data",
        "model",
    } <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_a_free_form_section_takes_any_key():
    """`model.params` belongs to a user's own model: its keys are the user's to name."""
    spec = load_spec(tiny_spec(space={"model.params.width": {"type": "int", "low": 8, "high": 64}}))
    assert "model.params.width" in spec.space


def test_checks_across_sections_run_beside_errors_of_single_keys(tmp_path: Path):
    """One attempt shows every problem: a typo does not hide a contradiction elsewhere."""
    text = (
        "name: x\nmetric: val_acc\noptimizer: {name: adam, lrr: 0.1}\nsearcher: grid\n"
        "space:\n  optimizer.lr: {type: float, low: 0.1, high: 1}\n"
        "  model.dropout: {type: float, low: 0.5, high: 0.1}\nscheduler: {name: asha, grace_period: 50}\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text))
    keys = [issue.key for issue in info.value.issues]
    assert keys == [
        "metric",
        "optimizer.lrr",
        "space.optimizer.lr",
        "space.model.dropout",
        "scheduler.grace_period",
    ]
