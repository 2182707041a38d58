"""Issue 14's "done when": real PyTorch work through hpo, as a new user would try it.

- the guide's shape from a YAML spec: a custom Dataset class over PNG files listed in a JSON
  annotation file, different train and eval transforms, DataLoaders with 2 workers, Optuna +
  ASHA, the best trial evaluated on the test split; and the same through a Pipeline subclass;
- the driver never opens an image (the Dataset logs the pid of every process that does);
- each example on a tiny budget;
- resume, retries, DDP and `checkpoint.keep_trials` for a Pipeline subclass;
- runtime failures of user data stored with their real reason while the search goes on.

Every run is tiny (8x8 images, 2-4 epochs, 1-4 trials) and shares the session's Ray.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

import hpo
from examples.image_folder.digits_dataset import DigitsPNG, load
from examples.image_folder.make_digits_images import write_digits
from examples.image_folder.model import SmallCNN
from examples.pipeline import SPEC as SPIRALS
from examples.pipeline import SpiralPipeline
from hpo.cli._app import cli
from hpo.resuming._plan import latest_checkpoints
from tests.resuming.test_resume import as_a_killed_driver_leaves_it

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SIZE = 8  # pixels per side: small, and the CNN's two blocks still pool once
# This module by the name trials import it by: pytest imports it by its file name alone, which
# Ray's workers (with the repository root on their path) cannot import.
HERE = "tests.trainable.test_real_pytorch_work"
NORMALIZE = {"name": "albumentations.Normalize", "mean": 0.5, "std": 0.25}


# --- what the trials import ---------------------------------------------------------------------


class RecordedDigits(DigitsPNG):
    """The example's Dataset, noting the pid of each process that opens an image in `pid_log`,
    and breaking on purpose as `fault` says (a user's bug, found only at run time)."""

    def __init__(self, root: str, *, pid_log: str | None = None, fault: str = "none", **kw: Any):
        super().__init__(root, **kw)
        self.pid_log, self.fault = pid_log, fault
        if fault == "missing":  # the annotation file lists an image that is not there
            self.files[3] = "images/missing.png"

    def open(self, path: Path) -> np.ndarray:
        if self.pid_log:
            with open(self.pid_log, "a") as log:
                log.write(f"{os.getpid()}\n")
        image = super().open(path)
        if self.fault == "shapes" and path.name.endswith("7.png"):
            image = np.pad(image, ((0, 2), (0, 2), (0, 0)))  # one image larger than the others
        return image

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image, label = super().__getitem__(i)
        # `targets` says 0..9, but some items carry a label the model has no output for.
        return image, label + 10 if self.fault == "labels" and i % 5 == 0 else label


def recorded_digits(config: dict[str, Any]) -> RecordedDigits:
    """`data.name` of the specs below: the example's `load`, recording and breaking."""
    return RecordedDigits(
        config["path"], pid_log=config.get("pid_log"), fault=config.get("fault", "none")
    )


class ToTensor:
    """An albumentations transform, then height x width x channels to a CHW tensor."""

    def __init__(self, transform: Any):
        self.transform = transform

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        out = self.transform(image=image)["image"]
        return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


class DigitsPipeline(hpo.Pipeline):
    """The guide's TrainingPipeline: its own splits, transforms and model; hpo's loop."""

    def setup_data(self) -> None:
        import albumentations as A

        data = self.config.data.model_dump()
        normalize = A.Normalize(mean=0.5, std=0.25)
        train = A.Compose([A.Affine(translate_px=(-1, 1), p=0.5), normalize])
        splits = {}
        for split, transform in (("train", train), ("val", normalize), ("test", normalize)):
            dataset = recorded_digits(data)
            # A fixed split by index: 3 of every 5 images train, 1 validates, 1 tests.
            keep = {"train": (0, 1, 2), "val": (3,), "test": (4,)}[split]
            dataset.transform = ToTensor(transform)
            indices = [i for i in range(len(dataset)) if i % 5 in keep]
            splits[split] = torch.utils.data.Subset(dataset, indices)
        self.train_dataset, self.val_dataset, self.test_dataset = (
            splits["train"],
            splits["val"],
            splits["test"],
        )

    def setup_model(self) -> None:
        width = int(self.config.model.params.get("width", 8))
        self.model = SmallCNN(10, (1, SIZE, SIZE), width=width).to(self.device)


class FailsOncePipeline(SpiralPipeline):
    """Fails in epoch 3 while the file `marker` exists, removing it (set by the test; the
    class reaches the trials by value, its attributes with it)."""

    marker = ""

    def train_epoch(self, epoch: int) -> dict[str, float]:
        if epoch == 3 and Path(self.marker).exists():
            Path(self.marker).unlink()
            raise RuntimeError("the node went away")
        return super().train_epoch(epoch)


# --- the examples' parts, without Ray ----------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 digits as 8x8 grayscale PNG files, with `annotations.json`."""
    folder = tmp_path_factory.mktemp("digits_png")
    write_digits(folder, limit=100, size=SIZE)
    return folder


def test_the_example_writes_pngs_its_dataset_reads_with_their_labels(images: Path):
    from sklearn.datasets import load_digits

    dataset = load({"path": str(images)})
    assert len(dataset) == 100 and dataset.classes == list(range(10))
    assert dataset.targets == [int(t) for t in load_digits().target[:100]]
    image, label = dataset[7]
    assert image.shape == (SIZE, SIZE, 1) and image.dtype == np.uint8 and label == 7
    assert image.max() > 128  # the digit's strokes survived the upscaling
    resized = load({"path": str(images), "image_size": 12})[7][0]
    assert resized.shape == (12, 12, 1)
    logits = SmallCNN(10, (1, SIZE, SIZE))(torch.zeros(2, 1, SIZE, SIZE))
    assert logits.shape == (2, 10)
    with pytest.raises(FileNotFoundError, match=r"make_digits_images\.py --out"):
        load({"path": str(images / "nowhere")})


def test_the_text_example_pads_dict_batches_for_a_model_taking_keywords():
    from examples.text_classification.data import load as load_text
    from examples.text_classification.data import pad_batch
    from examples.text_classification.model import TinyTextClassifier

    dataset = load_text({"sentences": 50, "max_length": 6, "vocab_size": 20})
    lengths = [len(dataset[i]["input_ids"]) for i in range(len(dataset))]
    assert max(lengths) <= 6 and min(lengths) < max(lengths)
    assert set(dataset.targets) == {0, 1}
    batch = pad_batch([dataset[i] for i in range(8)])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (8, max(lengths[:8]))
    assert batch["attention_mask"].sum(1).tolist() == lengths[:8]
    assert int(batch["input_ids"].max()) < 20
    labels = batch.pop("labels")
    assert TinyTextClassifier(2, vocab_size=20, max_length=6)(**batch).shape == (len(labels), 2)


# --- whole searches on the session's Ray --------------------------------------------------------


def _pids(log: Path) -> set[int]:
    return {int(line) for line in log.read_text().split()}


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_the_guides_shape_from_a_yaml_spec_with_the_driver_opening_no_image(
    workdir: Path, images: Path
):
    """examples/image_folder/spec.yaml through `hpo run`, on a Dataset that logs who opens
    each image: trial processes (the DataLoader's workers among them), never the driver."""
    log = workdir / "pids.log"
    overrides = {
        "data.name": f"{HERE}:recorded_digits",
        "data.path": str(images),
        "data.pid_log": str(log),
        "training.epochs": 3,
        "training.batch_size": 16,
        "searcher.n_startup_trials": 2,
        "scheduler.grace_period": 1,
        "budget.num_samples": 3,
        "tracking.tensorboard": False,
    }
    args = ["run", str(EXAMPLES / "image_folder" / "spec.yaml"), "--name", "guide"]
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output

    experiment = hpo.load("guide")
    trials = experiment.trials()
    assert len(trials) == 3 and set(trials["status"]) <= {"COMPLETED", "PRUNED"}
    test = experiment.row["test_metrics"]
    assert {"test_loss", "test_accuracy"} <= set(test)
    assert experiment.best(1).iloc[0]["test.test_accuracy"] == test["test_accuracy"]
    opened = _pids(log)
    assert os.getpid() not in opened
    assert len(opened) >= 3  # a trial's loader workers (2 per loader) opened the images


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session", "workdir")
def test_the_same_through_a_pipeline_subclass_keeping_the_best_trials_checkpoint(
    workdir: Path, images: Path
):
    log = workdir / "pids.log"
    spec = {
        "name": "guide-pipeline",
        "metric": "val_accuracy",
        "mode": "max",
        "data": {"name": f"{HERE}:recorded_digits", "path": str(images), "pid_log": str(log)},
        "loader": {"num_workers": 2},
        "optimizer": {"name": "adamw", "lr": 3e-3},
        "training": {"epochs": 3, "batch_size": 16},
        "checkpoint": {"every": 1, "keep_trials": 1},
        "space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
        "searcher": {"name": "optuna", "n_startup_trials": 2},
        "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
        "budget": {"num_samples": 3},
        "resources": {"cpu": 2},
        "tracking": {"tensorboard": False},
    }
    experiment = hpo.tune(DigitsPipeline, spec)
    trials = experiment.trials()
    assert len(trials) == 3 and set(trials["status"]) <= {"COMPLETED", "PRUNED"}
    assert trials["best.val_accuracy"].notna().all()
    assert {"test_loss", "test_accuracy"} <= set(experiment.row["test_metrics"])
    kept = trials.dropna(subset=["checkpoint_path"])
    assert list(kept["trial_id"]) == list(experiment.best(1)["trial_id"])
    on_disk = latest_checkpoints(workdir / "hpo-results" / "guide-pipeline")
    assert set(on_disk) == set(kept["trial_id"])
    opened = _pids(log)
    assert opened and os.getpid() not in opened


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session", "workdir")
def test_the_built_in_image_folder_example_runs(images: Path):
    experiment = hpo.run(
        EXAMPLES / "image_folder" / "spec_builtin.yaml",
        data__path=str(images),
        data__image_size=SIZE,
        training__epochs=2,
        training__batch_size=16,
        budget__num_samples=2,
        searcher__n_startup_trials=2,
        scheduler__grace_period=1,
        tracking__tensorboard=False,
    )
    trials = experiment.trials()
    assert len(trials) == 2 and set(trials["status"]) <= {"COMPLETED", "PRUNED"}
    assert {"test_loss", "test_accuracy"} <= set(experiment.row["test_metrics"])


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session", "workdir")
def test_the_text_example_trains_on_dict_batches():
    experiment = hpo.run(
        EXAMPLES / "text_classification" / "spec.yaml",
        data__sentences=300,
        training__epochs=2,
        budget__num_samples=1,
        scheduler__grace_period=2,
        tracking__tensorboard=False,
    )
    trials = experiment.trials()
    assert set(trials["status"]) == {"COMPLETED"}, trials["error"].tolist()
    assert trials["best.val_accuracy"].notna().all()
    assert "test_accuracy" in experiment.row["test_metrics"]


def _spirals(name: str, **changes: Any) -> dict[str, Any]:
    """examples/pipeline.py's spec, tiny: 2 trials of 4 epochs, random search, no pruning."""
    spec = {
        **SPIRALS,
        "name": name,
        "training": {"epochs": 4, "batch_size": 128},
        "searcher": "random",
        "scheduler": "fifo",
        "budget": {"num_samples": 2},
        "tracking": {"tensorboard": False},
    }
    spec.update(changes)
    return spec


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session", "workdir")
def test_a_pipeline_resumes_from_checkpoints_with_its_own_state(workdir: Path):
    """The pipeline example after a killed driver (the store a run behind its checkpoints):
    the resumed trials go on from their checkpoints, their extra state included, as
    tests/resuming's test of the built-in trainable does."""
    spec = _spirals("spirals-resumed", checkpoint={"every": 1, "keep": 4, "keep_trials": 2})
    before = hpo.tune(SpiralPipeline, spec).history().set_index(["trial_id", "iteration"])
    assert (before["epochs_trained"] == before.index.get_level_values(1)).all()
    first, second = sorted(before.index.get_level_values(0).unique())
    as_a_killed_driver_leaves_it(workdir, "spirals-resumed", {first: 1, second: 2})
    for saved in latest_checkpoints(workdir / "hpo-results" / "spirals-resumed")[second]:
        if saved.iteration == 4:
            shutil.rmtree(saved.path)

    after = hpo.resume("spirals-resumed")
    assert set(after.trials()["status"]) == {"COMPLETED"}
    history = after.history().set_index(["trial_id", "iteration"])
    assert list(history.index) == list(before.index)
    same = history["epoch_time_s"] == before["epoch_time_s"]
    assert same.drop((second, 4)).all() and not same[(second, 4)]  # trained again: that one
    # The counter and the smoothed loss came back from the checkpoint of epoch 3.
    assert history.loc[(second, 4), "epochs_trained"] == 4
    assert history.loc[(second, 4), "train_loss_smoothed"] == pytest.approx(
        before.loc[(second, 4), "train_loss_smoothed"], rel=1e-5
    )


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session", "workdir")
def test_a_failed_pipeline_trial_is_retried_from_its_checkpoint(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
):
    marker = workdir / "fail-once"
    marker.touch()
    monkeypatch.setattr(FailsOncePipeline, "marker", str(marker))
    spec = _spirals(
        "spirals-retried",
        model={"hidden_size": 16, "num_layers": 1},
        space={},
        checkpoint={"every": 1},
        budget={"num_samples": 1, "max_failures": 1},
    )
    experiment = hpo.tune(FailsOncePipeline, spec)
    [trial] = experiment.trials().itertuples()
    assert not marker.exists()  # it did fail once
    assert trial.status == "COMPLETED" and trial.iterations == 4
    history = experiment.history()
    assert list(history["iteration"]) == [1, 2, 3, 4]
    assert list(history["epochs_trained"]) == [1, 2, 3, 4]  # restored with epoch 2's weights


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session", "workdir")
def test_a_pipeline_trains_in_a_ddp_group_of_two_cpu_workers(workdir: Path):
    spec = _spirals(
        "spirals-ddp",
        space={},
        # Two workers of half a CPU each fit the session's two CPUs beside the trial itself.
        resources={"cpu": 0.5, "workers": 2},
        training={"epochs": 2, "batch_size": 128},
        checkpoint={"every": 1},
        budget={"num_samples": 1},
    )
    experiment = hpo.tune(SpiralPipeline, spec)
    trial = experiment.trials().iloc[0]
    assert trial["status"] == "COMPLETED", trial["error"]
    assert trial["node"].endswith(" x2")
    history = experiment.history().sort_values("iteration")
    assert list(history["epochs_trained"]) == [1, 2]
    assert history["val_accuracy"].iloc[-1] > 0.5  # 3 classes: a third is chance
    saved = max(latest_checkpoints(workdir / "hpo-results" / "spirals-ddp")[trial["trial_id"]])
    assert saved.iteration == 2


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session", "workdir")
def test_data_that_breaks_at_run_time_fails_its_trial_with_the_reason_and_the_search_goes_on(
    workdir: Path, images: Path
):
    spec = workdir / "faults.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "faults",
                "metric": "val_accuracy",
                "mode": "max",
                "data": {"name": f"{HERE}:recorded_digits", "path": str(images)},
                "transforms": {"train": [NORMALIZE], "eval": [NORMALIZE]},
                "model": {"name": "examples.image_folder.model:SmallCNN", "params": {"width": 4}},
                "training": {"epochs": 1, "batch_size": 16},
                "space": {
                    "data.fault": {
                        "type": "grid",
                        "values": ["none", "shapes", "labels", "missing"],
                    }
                },
                "searcher": "grid",
                "tracking": {"tensorboard": False},
            }
        )
    )
    result = CliRunner().invoke(cli, ["run", str(spec)])
    assert result.exit_code == 0, result.output  # one trial finished: the search succeeded
    trials = hpo.load("faults").trials().set_index("params.data.fault")
    assert trials.loc["none", "status"] == "COMPLETED"
    reasons = {
        "shapes": "stack expects each tensor to be equal size",
        "labels": "out of bounds",
        "missing": "missing.png",
    }
    for fault, reason in reasons.items():
        assert trials.loc[fault, "status"] == "ERROR"
        number = str(trials.loc[fault, "number"])
        shown = CliRunner().invoke(cli, ["show", "faults", "--trial", number])
        assert shown.exit_code == 0, shown.output
        assert reason in shown.output, (fault, shown.output)
