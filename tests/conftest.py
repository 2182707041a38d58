"""Shared fixtures: one local Ray for the whole session, and a scratch working directory."""

from __future__ import annotations

import os

# Bind Ray to the loopback address only (must be set before Ray is imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# Offline here: albumentations must not ask the package index for updates on import.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from pathlib import Path

import pytest

SEARCH_SPACES = Path(__file__).resolve().parent.parent / "search_spaces"


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray started once for every test that runs trials (ray.init takes seconds)."""
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a fresh directory so that `hpo-results/` lands there, with no store set outside."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_STORE", raising=False)
    return tmp_path


def tiny_spec(**changes) -> dict:
    """A spec small enough to run in seconds: digits, a small MLP, 3 epochs."""
    spec = {
        "name": "tiny",
        "metric": "val_accuracy",
        "mode": "max",
        "seed": 0,
        "model": {"hidden_size": 16, "num_layers": 1},
        "optimizer": {"name": "adam", "lr": 3e-3},
        "training": {"epochs": 3, "batch_size": 128},
        "space": {
            "optimizer.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
            "model.hidden_size": {"type": "int", "low": 8, "high": 32},
        },
        "searcher": "random",
        "scheduler": "fifo",
        "budget": {"num_samples": 3},
    }
    spec.update(changes)
    return spec


POSTGRES_ENV = "HPO_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path):
    """The URL of an empty store on each database the store suite runs against.

    PostgreSQL is a real server: `.ci/run` starts one and sets $HPO_TEST_POSTGRES_URL.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hpo.db'}"
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"no PostgreSQL server: set ${POSTGRES_ENV} (bash .ci/postgres start prints one)"
        )
    import sqlalchemy as sa

    from hpo.store._schema import metadata

    yield url
    engine = sa.create_engine(url)
    metadata.drop_all(engine)  # the next test starts from an empty database again
    engine.dispose()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Train on one thread: tiny models are fastest so, and the machine's cores are shared."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, loaded once for every test that trains on them."""
    from hpo.trainable import load_dataset
    from hpo.trainable.config import DataConfig

    return load_dataset(DataConfig(name="digits"))
