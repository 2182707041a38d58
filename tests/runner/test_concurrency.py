"""Two `hpo run` processes write into one SQLite store at once, under the same experiment
name, while `hpo show` reads it in a loop: no "database is locked", no lost row."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from hpo.store import Store

TRIALS, EPOCHS = 4, 8

TRAIN = f"""
import time
import hpo

def train(config):
    for epoch in range(1, {EPOCHS} + 1):
        time.sleep(0.02)
        hpo.report({{"loss": config["x"] / epoch, "epoch": epoch}})
"""


def hpo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpo", *args]


@pytest.mark.ray
@pytest.mark.slow
def test_two_runs_and_a_reader_share_one_sqlite_store(workdir: Path):
    (workdir / "steps.py").write_text(TRAIN)
    spec = workdir / "shared.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "shared",
                "trainable": "steps:train",
                "metric": "loss",
                "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
                "budget": {"num_samples": TRIALS, "max_concurrent": 2},
                "tracking": {"tensorboard": False},
            }
        )
    )
    url = f"sqlite:///{workdir / 'shared.db'}"  # new: the runs also race to create it
    runs = [
        subprocess.Popen(
            hpo_command("run", str(spec), "--store", url),
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]

    reads: list[subprocess.CompletedProcess] = []

    def read_in_a_loop() -> None:
        names = ["shared", "shared-2"]
        while any(run.poll() is None for run in runs):
            name = names[len(reads) % 2]
            reads.append(
                subprocess.run(
                    hpo_command("show", name, "--store", url, "-f", "csv"),
                    cwd=workdir,
                    capture_output=True,
                    text=True,
                )
            )

    reader = threading.Thread(target=read_in_a_loop)
    started = time.monotonic()
    reader.start()
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    reader.join()
    rows_read = sum(len(r.stdout.splitlines()) - 1 for r in reads if r.returncode == 0)
    print(
        f"two runs took {time.monotonic() - started:.1f}s; hpo show ran {len(reads)} times "
        f"({sum(r.returncode == 0 for r in reads)} found the experiment) and read "
        f"{rows_read} trial rows"
    )

    for run, output in zip(runs, outputs, strict=True):
        assert "database is locked" not in output
        assert run.returncode == 0, output
    for read in reads:
        assert "database is locked" not in read.stdout + read.stderr
        # Before a run has created the store or its experiment, `show` says so (exit 2);
        # never a crash.
        said = read.stderr + read.stdout
        assert read.returncode == 0 or (
            read.returncode == 2 and ("no experiment named" in said or "no results store" in said)
        ), said
    assert sum(read.returncode == 0 for read in reads) >= 2

    store = Store(url)
    assert store.experiment_names() == ["shared", "shared-2"]
    first, second = store.experiment("shared"), store.experiment("shared-2")
    # The two runs did write at the same time.
    assert first["started_at"] < second["finished_at"]
    assert second["started_at"] < first["finished_at"]
    for name in ("shared", "shared-2"):
        experiment = store.experiment(name)
        assert experiment["status"] == "COMPLETED"
        trials = store.trial_rows(experiment["id"])
        assert len(trials) == TRIALS
        assert {t["status"] for t in trials} == {"COMPLETED"}
        results = store.result_rows(experiment["id"])
        assert len(results) == TRIALS * EPOCHS  # every epoch of every trial, once
        by_trial: dict[str, list[int]] = {}
        for row in results:
            by_trial.setdefault(row["trial_id"], []).append(row["iteration"])
        assert all(steps == list(range(1, EPOCHS + 1)) for steps in by_trial.values())
