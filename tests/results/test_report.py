"""hpo report: a real tiny run's report opened in headless chromium, and hand-filled stores for
the edge cases (conditional parameters, unfinished and failed trials, no trials at all)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

import hpo
from hpo.cli._app import cli
from hpo.results._experiment import Experiment
from hpo.results._report import figures, write_html, write_png
from hpo.store import Store, now
from tests.conftest import tiny_spec

CHROMIUM = Path("/usr/bin/chromium")
# Flags that work headless as root in a container; a fresh profile comes from playwright.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def open_in_chromium(page: Path, screenshot: Path) -> dict[str, Any]:
    """Open `page` in headless chromium; return what it drew, logged and requested."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        why = (
            f"the report's browser test needs {CHROMIUM} (apt-get install chromium) and the "
            "playwright package (pip install -e '.[dev]')"
        )
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    seen: dict[str, Any] = {"errors": [], "requests": []}
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 900},
        )
        tab = browser.new_page()
        tab.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
        tab.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
        tab.on("request", lambda request: seen["requests"].append(request.url))
        tab.goto(page.resolve().as_uri(), wait_until="load")
        seen["figures"] = tab.eval_on_selector_all(
            "figure",
            """figures => figures.map(f => {
                const svg = f.querySelector('svg');
                const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
                const drawn = svg ? [...svg.querySelectorAll('path')]
                    .filter(p => p.getTotalLength() > 0).length : 0;
                const texts = svg ? [...svg.querySelectorAll('text')].map(t => t.textContent) : [];
                return {id: f.id, drawn: drawn, width: box.width, height: box.height, texts: texts};
            })""",
        )
        seen["text"] = tab.inner_text("body")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return seen


# --- a real tiny run ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ran(ray_session, tmp_path_factory: pytest.TempPathFactory) -> Experiment:
    """A tiny search with pruning, a categorical and a conditional parameter, run once."""
    spec = tiny_spec(
        name="report",
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
        training={"epochs": 4, "batch_size": 128},
        budget={"num_samples": 6},
        space={
            "optimizer.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
            "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
            "optimizer.momentum": {
                "type": "float",
                "low": 0.5,
                "high": 0.95,
                "when": {"optimizer.name": "sgd"},
            },
            "model.hidden_size": {"type": "int", "low": 8, "high": 32},
        },
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("report-run"))
        patch.delenv("HPO_STORE", raising=False)
        return hpo.run(spec, console=Console(quiet=True))


@pytest.mark.ray
def test_the_report_of_a_real_run_renders_offline_in_chromium(ran: Experiment, tmp_path: Path):
    page = tmp_path / "report.html"
    result = invoke("report", ran.name, "--store", ran.store.url, "-o", str(page))
    assert result.exit_code == 0, result.output
    assert f"Wrote {page}" in result.output
    assert page.stat().st_size < 300_000  # small enough to mail

    # The screenshot is the CI artifact: under the experiment's folder, beside its trials.
    screenshot = Path(ran.row["storage_path"]) / ran.name / "report.png"
    seen = open_in_chromium(page, screenshot)

    expected = list(figures(ran))
    assert {"progress", "parallel", "importance", "curves", "memory"} <= set(expected)
    assert {f"slice-{p}" for p in ran.spec["space"]} <= set(expected)
    assert [f["id"] for f in seen["figures"]] == [f"fig-{key}" for key in expected]
    for figure in seen["figures"]:
        assert figure["drawn"] >= 5, figure  # axes, ticks and the data, not an empty frame
        assert figure["width"] > 200 and figure["height"] > 100, figure
    assert seen["errors"] == []
    assert seen["requests"] == [page.resolve().as_uri()]  # nothing fetched but the file
    assert screenshot.read_bytes().startswith(PNG_MAGIC)
    for text in ("Best config", "Top 10 trials", "Failed trials (0)", "Environment", "Spec"):
        assert text in seen["text"]


@pytest.mark.ray
def test_the_report_shows_the_best_trial_spec_and_environment(ran: Experiment, tmp_path: Path):
    page = ran.report(tmp_path / "r.html")
    text = page.read_text()
    best = ran.best(1).iloc[0]
    assert f"Best config: trial {best['number']}" in text
    assert f"lr: {ran.config(best['trial_id'])['optimizer']['lr']}" in text
    # Its config holds what applies to digits, an MLP and no LR schedule, nothing else.
    for stray in ("n_informative", "kernel_size", "num_blocks", "step_size", "warmup_epochs"):
        assert stray not in text
    for value in (*ran.row["versions"].values(), ran.row["host"], "asha"):
        assert str(value) in text
    # Self-contained: no script, and nothing that a browser would load from elsewhere.
    assert "<script" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "@import" not in text and "url(http" not in text


@pytest.mark.ray
def test_png_figures_for_papers(ran: Experiment, tmp_path: Path):
    result = invoke("report", ran.name, "--store", ran.store.url, "--png", str(tmp_path / "png"))
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "png").iterdir())
    assert [f.stem for f in files] == sorted(figures(ran))
    assert all(f.read_bytes().startswith(PNG_MAGIC) for f in files)
    assert not list(tmp_path.glob("*.html"))  # --png alone writes no page


@pytest.mark.ray
def test_the_run_summary_and_show_point_to_the_report(ran: Experiment, capsys):
    from hpo.cli._app import _print_summary

    _print_summary(ran, None)
    assert f"hpo report {ran.name} -o {ran.name}.html" in capsys.readouterr().out
    result = invoke("show", ran.name, "--store", ran.store.url)
    assert f"hpo report {ran.name} --store {ran.store.url} -o {ran.name}.html" in result.output


# --- stores filled by hand ---------------------------------------------------------------------

SPEC = {
    "metric": "val_loss",
    "mode": "min",
    "searcher": {"name": "random"},
    "scheduler": {"name": "asha"},
    "seed": 0,
    "num_trials": 6,
    "space": {
        "optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
        "optimizer.momentum": {
            "type": "float",
            "low": 0.5,
            "high": 0.9,
            "when": {"optimizer.name": "sgd"},
        },
        "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    },
}


def fill(store: Store, name: str, trials: list[tuple[str, dict, list[float]]]) -> Experiment:
    """An experiment with (status, params, val_loss per epoch) trials."""
    exp_id, _ = store.create_experiment(name, SPEC, storage_path="/x")
    for number, (status, params, losses) in enumerate(trials):
        key = {"experiment_id": exp_id, "trial_id": f"t{number}"}
        row = {
            **key,
            "number": number,
            "status": status,
            "params": params,
            "config": {"optimizer": {"name": "adam", **params}},
            "started_at": now(),
            "ended_at": None if status in ("PENDING", "RUNNING") else now(),
            "iterations": len(losses),
        }
        if losses:
            row["final_metrics"] = {"val_loss": losses[-1]}
            row["best_metrics"] = {"val_loss": min(losses)}
            row["best_value"] = min(losses)
            row["value"] = losses[-1]
        if status == "ERROR":
            row.update(error_type="FloatingPointError", error="FloatingPointError: loss is nan")
        results = [
            {**key, "iteration": i + 1, "metrics": {"val_loss": v}, "reported_at": now()}
            for i, v in enumerate(losses)
        ]
        store.write([row], results)
    return hpo.load(name, store)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'hpo.db'}")


def test_conditional_unfinished_and_failed_trials(store: Store, tmp_path: Path):
    sgd = {"optimizer.name": "sgd"}
    experiment = fill(
        store,
        "mixed",
        [
            ("COMPLETED", {**sgd, "optimizer.momentum": 0.9, "optimizer.lr": 0.01}, [0.9, 0.5]),
            ("COMPLETED", {"optimizer.name": "adam", "optimizer.lr": 0.001}, [0.8, 0.4, 0.3]),
            ("PRUNED", {"optimizer.name": "adam", "optimizer.lr": 0.05}, [1.2]),
            ("COMPLETED", {**sgd, "optimizer.momentum": 0.6, "optimizer.lr": 0.003}, [0.7, 0.6]),
            ("ERROR", {"optimizer.name": "adam", "optimizer.lr": 0.09}, []),
            ("RUNNING", {**sgd, "optimizer.momentum": 0.7, "optimizer.lr": 0.002}, [0.95]),
            ("PENDING", {"optimizer.name": "adam", "optimizer.lr": 0.02}, []),
        ],
    )
    drawn = figures(experiment)
    assert list(drawn) == [
        "progress",
        "parallel",
        "importance",
        "curves",
        "slice-optimizer.name",
        "slice-optimizer.momentum",
        "slice-optimizer.lr",
    ]
    text = write_html(experiment, tmp_path / "mixed.html").read_text()
    assert "optimizer.momentum (active in 2 of 4)" in text
    assert "Failed trials (1)" in text and "FloatingPointError: loss is nan" in text
    assert "Best config: trial 1, val_loss 0.3" in text
    assert "No finished trial" not in text
    seen = open_in_chromium(tmp_path / "mixed.html", tmp_path / "mixed.png")
    assert seen["errors"] == [] and all(f["drawn"] >= 5 for f in seen["figures"])


@pytest.mark.parametrize(
    "trials",
    [
        [],
        [("PENDING", {"optimizer.name": "adam", "optimizer.lr": 0.01}, [])],
        [
            ("RUNNING", {"optimizer.name": "adam", "optimizer.lr": 0.01}, [0.9]),
            ("ERROR", {"optimizer.name": "adam", "optimizer.lr": 0.09}, []),
        ],
    ],
    ids=["no-trials", "pending", "running-and-failed"],
)
def test_no_finished_trial_still_gives_a_report(store: Store, tmp_path: Path, trials: list):
    experiment = fill(store, "early", trials)
    text = experiment.report(tmp_path / "early.html").read_text()
    assert "No finished trial yet" in text
    assert set(figures(experiment)) <= {"curves"}  # a running trial's curve, at most
    assert len(write_png(experiment, tmp_path / "png")) == len(figures(experiment))


def test_peak_memory_is_drawn_against_the_metric_with_the_trials_out_of_memory(
    store: Store, tmp_path: Path
):
    adam = {"optimizer.name": "adam"}
    experiment = fill(
        store,
        "memory",
        [
            ("COMPLETED", {**adam, "optimizer.lr": 0.01}, [0.9, 0.5]),
            ("COMPLETED", {**adam, "optimizer.lr": 0.002}, [0.8, 0.4]),
            ("ERROR", {**adam, "optimizer.lr": 0.05}, []),
        ],
    )
    assert "memory" not in figures(experiment)  # a store from before hpo measured it
    peaks = {"t0": (120.0, None), "t1": (480.0, None), "t2": (2048.0, "out_of_memory")}
    for trial_id, (peak, error_type) in peaks.items():
        row = {"experiment_id": experiment.row["id"], "trial_id": trial_id, "peak_memory_mb": peak}
        if error_type:
            row |= {"error_type": error_type, "error": "out of memory in epoch 1, step 1 ..."}
        store.write([row], [])
    drawn = figures(experiment)
    assert list(drawn)[-4:] == ["curves", "memory", "slice-optimizer.name", "slice-optimizer.lr"]
    (ax,) = drawn["memory"].axes
    assert ax.get_xlabel() == "peak memory (MB)" and ax.get_ylabel() == "best val_loss"
    points = sorted(tuple(xy) for c in ax.collections for xy in c.get_offsets().tolist())
    assert [x for x, _ in points] == [120.0, 480.0, 2048.0]
    assert [y for x, y in points[:2]] == [0.5, 0.4]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["COMPLETED", "out of memory"]
    text = write_html(experiment, tmp_path / "memory.html").read_text()
    assert 'id="fig-memory"' in text and "2048" in text  # the failed trial's peak, listed


def test_a_single_finished_trial_has_no_importance(store: Store):
    experiment = fill(
        store, "one", [("COMPLETED", {"optimizer.name": "adam", "optimizer.lr": 0.01}, [0.5])]
    )
    assert "importance" not in figures(experiment)
    assert "progress" in figures(experiment)


def test_bad_input_is_a_usage_error(store: Store, tmp_path: Path):
    fill(store, "exp", [])
    result = invoke("report", "nope", "--store", store.url, "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert "no experiment named 'nope'" in result.output
    result = invoke("report", "exp", "--store", store.url, "-o", str(tmp_path / "no" / "r.html"))
    assert result.exit_code == 2
    assert "cannot write the report to" in result.output
    assert "Traceback" not in result.output


def test_the_default_file_is_named_after_the_experiment(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fill(store, "exp", [])
    monkeypatch.chdir(tmp_path)
    result = invoke("report", "exp", "--store", store.url)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "exp.html").is_file()


def evaluated(store: Store, name: str, report: dict, metrics: dict) -> Experiment:
    """An experiment whose best trial has a stored test evaluation."""
    experiment = fill(store, name, [("COMPLETED", {"optimizer.lr": 0.01}, [0.9, 0.5])] * 2)
    exp_id = experiment.row["id"]
    store.set_evaluation(exp_id, f"t{experiment.best_number()}", "test", metrics, report)
    return experiment


def test_the_confusion_matrix_is_a_heatmap_with_the_class_names(store: Store, tmp_path: Path):
    import torch

    from hpo.trainable.data import Task
    from hpo.trainable.diagnostics import Predictions, diagnose

    names = ["ant", "bee", "cat", "dog"]
    predictions = Predictions(Task.CLASSIFICATION)
    true = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 3])
    decided = torch.tensor([0, 1, 1, 1, 2, 0, 3, 3, 2])
    predictions.update(torch.nn.functional.one_hot(decided, 4).float(), true)
    experiment = evaluated(store, "classes", diagnose(predictions, names), {"test_loss": 0.3})
    assert list(figures(experiment))[-1] == "confusion"
    assert experiment.evaluation().confusion.loc["dog", "cat"] == 1  # true dog, predicted cat
    page = write_html(experiment, tmp_path / "classes.html")
    seen = open_in_chromium(page, tmp_path / "classes.png")
    assert seen["errors"] == []
    [heatmap] = [f for f in seen["figures"] if f["id"] == "fig-confusion"]
    assert heatmap["drawn"] >= 5 and heatmap["width"] > 200 and heatmap["height"] > 200
    for name in names:  # on both axes
        assert heatmap["texts"].count(name) == 2, heatmap["texts"]
    assert {"predicted class", "true class"} <= set(heatmap["texts"])
    assert "Per class: trial 0 on the test split" in seen["text"]


def test_a_regression_model_is_drawn_predicted_against_true(store: Store, tmp_path: Path):
    import torch

    from hpo.trainable.data import Task
    from hpo.trainable.diagnostics import Predictions, diagnose

    predictions = Predictions(Task.REGRESSION)
    true = torch.linspace(0, 10, 50)
    predictions.update(true + torch.sin(true), true)
    experiment = evaluated(store, "regress", diagnose(predictions), {"test_mse": 0.5})
    drawn = figures(experiment)
    assert "predicted-vs-true" in drawn and "confusion" not in drawn
    assert experiment.evaluation().residuals["count"] == 50
    page = write_html(experiment, tmp_path / "regress.html")
    seen = open_in_chromium(page, tmp_path / "regress.png")
    [plot] = [f for f in seen["figures"] if f["id"] == "fig-predicted-vs-true"]
    assert plot["drawn"] >= 5 and "predicted = true" in plot["texts"]
    assert "Residuals: trial 0 on the test split" in seen["text"]


def test_a_stopped_search_says_why_in_the_report_show_ls_and_resume(store: Store, tmp_path: Path):
    from hpo.store import ExperimentStatus

    experiment = fill(
        store,
        "stopped",
        [
            ("COMPLETED", {"optimizer.name": "adam", "optimizer.lr": 0.01}, [0.5, 0.2]),
            ("INTERRUPTED", {"optimizer.name": "adam", "optimizer.lr": 0.02}, [0.9]),
        ],
    )
    reason = "val_loss reached 0.3 (budget.stop_when.reaches): 0.2 at trial 0"
    store.finish_experiment(experiment.row["id"], ExperimentStatus.COMPLETED, reason)
    experiment = hpo.load("stopped", store)
    text = experiment.report(tmp_path / "stopped.html").read_text()
    assert f"<p>Stopped early: {reason}</p>" in text
    shown = invoke("show", "stopped", "--store", store.url)
    assert shown.exit_code == 0 and f"Stopped early: {reason}" in shown.output
    listed = invoke("ls", "--store", store.url)
    assert "COMPLETED (stopped early)" in listed.output and reason in listed.output
    resumed = invoke("resume", "stopped", "--store", store.url)
    assert resumed.exit_code == 2
    assert "'stopped' had stopped early, as its spec asked" in resumed.output
    assert "hpo resume stopped --continue" in resumed.output
