"""The code a spec names by import path: imported at validation, never called, every problem
at its file, line and key; and what `trainable:` means when it names a Pipeline subclass."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from hpo.errors import SpecError, SpecWarning
from hpo.spec import Spec, TrainableKind, load_spec
from hpo.trainable.user_code import check_import_path, is_pipeline_class, takes_one_argument
from tests.conftest import tiny_spec
from tests.spec.user_modules import put_on_path


@pytest.fixture
def user_code(tmp_path: Path):
    code = tmp_path / "code"
    code.mkdir()
    with put_on_path(code) as path:
        yield path


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\n" + body)
    return path


PIPELINE = "trainable: 'user_pipeline:MyPipeline'\n"

# (spec body after `name: x`, "line: key" it must name, a fragment of the message).
USER_CODE_ERRORS = [
    # data functions: imported, their signature checked, never called
    (
        "data: {name: 'user_dta:load'}",
        "2: data.name",
        "cannot load 'user_dta:load': cannot import 'user_dta' for 'user_dta:load' "
        "(No module named 'user_dta'); did you mean 'user_data'?",
    ),
    (
        "data:\n  name: 'user_data:lod'",
        "3: data.name",
        "module 'user_data' has no attribute 'lod'; did you mean 'load'?",
    ),
    (
        "data: {name: 'user_data:no_config'}",
        "2: data.name",
        "hpo calls 'user_data:no_config' with one argument, the data section as a dict, but its "
        "signature is (); write it as `def no_config(config): ...`",
    ),
    (
        "data: {name: 'user_data:two'}",
        "2: data.name",
        "but its signature is (config, split); write it as `def two(config): ...` "
        "(other parameters need defaults)",
    ),
    (
        "data: {name: 'user_data:NoConfig'}",
        "2: data.name",
        "write it as `class NoConfig: def __init__(self, config): ...`",
    ),
    (
        "data: {name: 'user_broken:load'}",
        "2: data.name",
        "importing 'user_broken' for 'user_broken:load' raised RuntimeError: no GPU here",
    ),
    (
        "data: {name: 'user_needs_missing:load'}",
        "2: data.name",
        "cannot import 'user_needs_missing' for 'user_needs_missing:load': it imports "
        "'not_installed_here', which is not installed",
    ),
    # transforms, by dotted path or module:Class
    (
        "transforms:\n  train:\n    - {name: user_transforms.Jiter, amount: 0.2}",
        "4: transforms.train.0.name",
        "module 'user_transforms' has no attribute 'Jiter'; did you mean 'Jitter'?",
    ),
    (
        "transforms:\n  eval:\n    - {name: user_transforms.Jitter}\n"
        "    - {name: 'user_transforms:Resise'}",
        "5: transforms.eval.1.name",
        "module 'user_transforms' has no attribute 'Resise'; did you mean 'Resize'?",
    ),
    (
        "transforms: {train: [{name: user_transfroms.Jitter}]}",
        "2: transforms.train.0.name",
        "cannot import 'user_transfroms' for 'user_transfroms.Jitter' (No module named "
        "'user_transfroms'); did you mean 'user_transforms'?",
    ),
    (
        "transforms: {train: [{name: user_transforms.SCALE}]}",
        "2: transforms.train.0.name",
        "'user_transforms.SCALE' is not callable (got float)",
    ),
    (
        "transforms: {train: [{name: Jitter}]}",
        "2: transforms.train.0.name",
        "'Jitter' names no module; write it as 'package.module.Class'",
    ),
    # the loader's collate function
    (
        "loader: {collate: 'user_collate:colate'}",
        "2: loader.collate",
        "cannot load 'user_collate:colate': module 'user_collate' has no attribute 'colate'; "
        "did you mean 'collate'?",
    ),
    (
        "loader: {collate: 'user_collate:no_batch'}",
        "2: loader.collate",
        "hpo calls 'user_collate:no_batch' with one argument, a list of samples",
    ),
    # losses and metrics by import path
    (
        "loss: {name: 'user_models:focal'}",
        "2: loss.name",
        "cannot load 'user_models:focal': module 'user_models' has no attribute 'focal'",
    ),
    (
        "metrics:\n  - accuracy\n  - 'user_modles:score'",
        "4: metrics.1",
        "cannot load 'user_modles:score': cannot import 'user_modles'",
    ),
    # models by import path: imported, not built
    ("model: {name: 'user_modles:Net'}", "2: model.name", "cannot load 'user_modles:Net'"),
    (
        "model: {name: 'user_models:Nett'}",
        "2: model.name",
        "module 'user_models' has no attribute 'Nett'; did you mean 'Net'?",
    ),
    # the trainable: a function, or a Pipeline subclass
    (
        "metric: loss\ntrainable: 'user_trian:main'",
        "3: trainable",
        "cannot load 'user_trian:main': cannot import 'user_trian'",
    ),
    (
        "trainable: user_train",
        "2: trainable",
        "expected 'package.module:function' (or 'package.module:Class', a subclass of "
        "hpo.Pipeline), got 'user_train'",
    ),
    (
        "metric: loss\ntrainable: 'user_train:main'\nresources: {workers: 2}",
        "4: resources.workers",
        "several workers per trial (distributed data parallel) need hpo's own trainable or a "
        "subclass of hpo.Pipeline",
    ),
    (
        "metric: loss\ntrainable: 'user_train:main'\nmodel: {hidden_size: 3}",
        "4: model",
        "`model` configures hpo's own trainable, not user_train:main; put your function's "
        "constants under `config` (or make it a subclass of hpo.Pipeline",
    ),
    # a Pipeline's sections are checked as hpo's own trainable's
    (
        PIPELINE + "metric: val_acc",
        "3: metric",
        "the trainable does not report 'val_acc' for dataset 'digits'; choose one of: ",
    ),
    (
        PIPELINE + "training: {epochs: 4}\nscheduler: {name: asha, max_t: 9}",
        "4: scheduler.max_t",
        "max_t=9 exceeds training.epochs=4",
    ),
    (
        PIPELINE + "config: {a: 1}",
        "3: config",
        "`config` is the base config of your own `trainable`; hpo's trainable is configured by "
        "its sections",
    ),
    (
        PIPELINE + "data: {name: 'user_data:no_config'}",
        "3: data.name",
        "write it as `def no_config(config): ...`",
    ),
    (
        PIPELINE + "space:\n  optimizer.lrate: {type: float, low: 0.1, high: 1}",
        "4: space.optimizer.lrate",
        "optimizer.lrate is not a key of the trainable's config; did you mean 'lr'?",
    ),
]


@pytest.mark.usefixtures("user_code")
@pytest.mark.parametrize(("body", "where", "message"), USER_CODE_ERRORS)
def test_user_code_catalogue(tmp_path: Path, body: str, where: str, message: str):
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, body))
    text = str(info.value)
    assert f"spec.yaml:{where}: " in text
    assert message in text
    assert info.value.exit_code == 2


@pytest.mark.usefixtures("user_code")
def test_every_problem_of_user_code_is_reported_at_once(tmp_path: Path):
    body = (
        "data: {name: 'user_data:no_config'}\n"
        "model: {name: 'user_models:Nett'}\n"
        "loader: {collate: 'user_collate:colate'}\n"
        "transforms: {train: [{name: user_transforms.Jiter}], eval: [{name: Jitter}]}\n"
        "optimizer: {lrr: 1}\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, body))
    located = [(issue.line, issue.key) for issue in info.value.issues]
    assert located == [
        (2, "data.name"),
        (3, "model.name"),
        (4, "loader.collate"),
        (5, "transforms.train.0.name"),
        (5, "transforms.eval.0.name"),
        (6, "optimizer.lrr"),
    ]


def test_a_trainable_that_does_not_import_hides_no_other_problem(tmp_path: Path):
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, "trainable: 'nowhere:Thing'\noptimizer: {lrr: 1}\n"))
    assert [issue.key for issue in info.value.issues] == ["trainable", "optimizer.lrr"]


def test_user_code_is_imported_never_called(tmp_path: Path, user_code: Path):
    """`user_data:load`, `Folder` and `Net` raise when called: validation only imports them."""
    for data in ("user_data:load", "user_data:Folder", "user_data:with_default"):
        spec = load_spec(
            {
                "name": "x",
                "data": {"name": data, "image_size": 32},
                "model": {"name": "user_models:Net", "params": {"width": 4}},
                "loader": {"collate": "user_collate:collate"},
                "transforms": {
                    "train": [{"name": "user_transforms.Jitter", "amount": 0.2}],
                    "eval": [{"name": "user_transforms:Resize"}],
                },
                "space": {"data.image_size": {"type": "categorical", "choices": [16, 32]}},
            }
        )
        assert spec.data.image_size == 32
        assert spec.trainable_kind is TrainableKind.BUILTIN


def test_a_spec_naming_no_user_code_imports_none(tmp_path: Path, user_code: Path):
    load_spec(tiny_spec())
    assert not [name for name in sys.modules if name.startswith("user_")]


@pytest.mark.usefixtures("user_code")
@pytest.mark.parametrize("name", ["user_pipeline:MyPipeline", "user_pipeline:Deeper"])
def test_a_pipeline_subclass_is_configured_by_the_sections(name: str):
    spec = load_spec(
        tiny_spec(
            trainable=name,
            data={"name": "user_data:load", "image_size": 32},
            resources={"workers": 2},
            scheduler={"name": "asha", "grace_period": 1},  # max_t: from training.epochs
        )
    )
    assert spec.trainable_kind is TrainableKind.PIPELINE and spec.is_pipeline
    base = spec.base_config()
    assert base["optimizer"]["lr"] == 3e-3 and base["data"]["image_size"] == 32
    assert base["metric"] == "val_accuracy"


@pytest.mark.usefixtures("user_code")
def test_a_function_is_configured_by_config():
    spec = load_spec(
        {"name": "x", "metric": "loss", "trainable": "user_train:main", "config": {"a": 1}}
    )
    assert spec.trainable_kind is TrainableKind.FUNCTION and not spec.is_pipeline
    assert spec.base_config() == {"a": 1}
    assert load_spec({"name": "x"}).trainable_kind is TrainableKind.BUILTIN


def test_an_object_the_caller_holds_is_not_imported():
    """`hpo.tune` holds the function or class; a local one has no importable reference."""

    def train(config: dict) -> None:
        return None

    class Local(_pipeline_base()):
        pass

    told = load_spec({"name": "x", "metric": "m", "trainable": "nowhere:train"}, trainable=train)
    assert told.trainable_kind is TrainableKind.FUNCTION
    pipeline = load_spec(
        {"name": "x", "trainable": "nowhere:Local", "training": {"epochs": 2}}, trainable=Local
    )
    assert pipeline.is_pipeline and pipeline.base_config()["training"]["epochs"] == 2
    stored = Spec.model_validate(pipeline.model_dump(mode="json"))
    assert stored.with_trainable(Local).is_pipeline


@pytest.mark.usefixtures("user_code")
def test_a_spec_not_made_by_load_spec_tells_its_trainable_on_first_use():
    stored = Spec.model_validate({"name": "x", "trainable": "user_pipeline:MyPipeline"})
    assert stored.is_pipeline
    moved = Spec.model_validate({"name": "x", "trainable": "gone_now:MyPipeline"})
    with pytest.raises(SpecError, match="x: trainable: cannot load 'gone_now:MyPipeline'"):
        moved.base_config()


def _pipeline_base() -> type:
    """hpo's Pipeline if it is there, else a class by its module and name (what is checked)."""
    namespace: dict = {}
    from tests.spec.user_modules import PIPELINE_BASE

    exec(PIPELINE_BASE, namespace)
    return namespace["Pipeline"]


def test_is_pipeline_class_reads_the_mro_by_name():
    base = _pipeline_base()
    child = type("Child", (base,), {})
    grandchild = type("Grandchild", (child,), {})
    impostor = type("Pipeline", (), {})  # the right name in another module
    assert is_pipeline_class(base) and is_pipeline_class(child) and is_pipeline_class(grandchild)
    assert not is_pipeline_class(impostor)
    assert not is_pipeline_class(object.__new__(child))  # an instance is not the class
    assert not is_pipeline_class(len) and not is_pipeline_class(None)


def test_takes_one_argument_reads_the_signature_only():
    def one(config):
        return None

    def keyword_only(*, config):
        return None

    assert takes_one_argument(one, "m:one", "x") is None
    assert takes_one_argument(lambda *args: None, "m:f", "x") is None
    assert takes_one_argument(dict, "builtins:dict", "x") is None  # a builtin: given the benefit
    assert "signature is (*, config)" in takes_one_argument(keyword_only, "m:k", "x")


def test_check_import_path_finds_nested_attributes():
    assert check_import_path("os.path.join") is None
    assert check_import_path("collections.OrderedDict.fromkeys") is None
    assert check_import_path("xml.etree.ElementTree:Element") is None
    assert "did you mean 'join'?" in check_import_path("os.path.jion")


def test_albumentations_transform_names_are_checked(tmp_path: Path, monkeypatch):
    pytest.importorskip("albumentations")
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check at import
    body = "transforms:\n  train:\n    - {name: albumentations.HorizontalFlp, p: 0.5}\n"
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, body))
    assert (
        "spec.yaml:4: transforms.train.0.name: module 'albumentations' has no attribute "
        "'HorizontalFlp'; did you mean 'HorizontalFlip'?"
    ) in str(info.value)
    load_spec(write(tmp_path, body.replace("Flp", "Flip")))


# --- loader.num_workers against the trial's CPUs ----------------------------------------------

# Data that a DataLoader reads (hpo's in-memory datasets are batched on the device instead).
IMAGES = "data: {name: image_folder, path: images}\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            f"{IMAGES}resources: {{cpu: 2}}\nloader:\n  num_workers: 4\n",
            "spec.yaml:5: loader.num_workers: 4 loader processes, but resources.cpu is 2 per "
            "trial: they would share those CPUs with the training process",
        ),
        (
            f"{IMAGES}resources: {{cpu: 1, workers: 2}}\nloader: {{num_workers: 2}}\n",
            "spec.yaml:4: loader.num_workers: 2 loader processes, but resources.cpu is 1 per "
            "worker of the trial's DDP group",
        ),
        (
            f"{IMAGES}resources: {{cpu: 0.5}}\nloader: {{num_workers: 1}}\n",
            "set resources.cpu to 2 (the loader's processes and the training process) or "
            "num_workers to at most 0",
        ),
    ],
)
def test_more_loader_processes_than_cpus_is_a_warning(tmp_path: Path, body: str, message: str):
    with pytest.warns(SpecWarning) as warned:
        spec = load_spec(write(tmp_path, body))
    assert spec.loader.num_workers >= 1
    assert [message in str(w.message) for w in warned] == [True]


def test_as_many_loader_processes_as_cpus_is_no_warning(tmp_path: Path):
    # The suite turns hpo's warnings into errors: loading is the assertion.
    load_spec(write(tmp_path, f"{IMAGES}resources: {{cpu: 2}}\nloader: {{num_workers: 2}}\n"))


def test_in_memory_data_reads_no_loader_so_is_not_warned(tmp_path: Path):
    load_spec(write(tmp_path, "resources: {cpu: 1}\nloader: {num_workers: 4}\n"))


@pytest.mark.usefixtures("user_code")
def test_a_function_reads_no_loader_so_is_not_warned(tmp_path: Path):
    load_spec({"name": "x", "metric": "m", "trainable": "user_train:main", "resources": {"cpu": 1}})


# --- data keys that do not apply, each at its own key -----------------------------------------


def test_each_key_that_does_not_apply_is_reported_at_its_line(tmp_path: Path):
    body = "data:\n  name: digits\n  imge_size: 3\n  n_samples: 50\n  flavour: 1\n"
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, body))
    assert [(i.line, i.key) for i in info.value.issues] == [
        (4, "data.imge_size"),
        (6, "data.flavour"),
    ]
    text = str(info.value)
    assert (
        "spec.yaml:4: data.imge_size: unknown key for dataset 'digits'; did you mean "
        "'image_size'?; only your own data function ('package.module:function') takes keys"
    ) in text
    # Once the unknown keys are gone, a known key of another kind is reported at its line too.
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, "data:\n  name: digits\n  n_samples: 50\n"))
    assert "spec.yaml:4: data.n_samples: does not apply to dataset 'digits'" in str(info.value)


def test_a_key_that_does_not_apply_from_an_override_names_the_override(tmp_path: Path):
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, "data: {name: iris}\n"), ["data.flavour=1"])
    assert "data.flavour: unknown key for dataset 'iris'" in str(info.value)
    assert "(from --set data.flavour=1)" in str(info.value)


def test_a_data_function_takes_keys_of_its_own(tmp_path: Path, user_code: Path):
    spec = load_spec(write(tmp_path, "data:\n  name: 'user_data:load'\n  vocab_size: 100\n"))
    assert spec.data.model_extra == {"vocab_size": 100}


def test_a_pipeline_spec_round_trips(tmp_path: Path, user_code: Path):
    """A spec naming user code dumps and loads as the same spec, as any other does."""
    spec = load_spec(tiny_spec(trainable="user_pipeline:MyPipeline"))
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True)))
    assert load_spec(path) == spec
