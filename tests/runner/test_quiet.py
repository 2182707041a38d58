"""Ray's quieting sets its environment, its telemetry patch and its loggers for one search
only: each is restored afterwards (none of these tests starts Ray)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from hpo.runner._quiet import (
    TUNE_ENVIRONMENT,
    environment,
    quiet_ray,
    ray_logs_to,
    without_callback_telemetry,
)

VARIANT_GENERATOR = "ray.tune.search.variant_generator"


@pytest.fixture
def loggers():
    """The loggers the quieting touches, put back as they were whatever a test does."""
    names = ["ray", "hpo", VARIANT_GENERATOR]
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    yield
    for logger, level in saved:
        logger.setLevel(level)


@pytest.mark.usefixtures("loggers")
def test_the_variant_generators_level_is_restored(tmp_path: Path):
    logger = logging.getLogger(VARIANT_GENERATOR)
    logger.setLevel(logging.INFO)  # as a user debugging their search might
    with ray_logs_to(tmp_path / "ray.log"):
        assert logger.level == logging.ERROR
    assert logger.level == logging.INFO


@pytest.mark.usefixtures("loggers")
def test_ray_and_hpo_records_go_to_the_file_and_their_loggers_are_restored(tmp_path: Path):
    loggers = [logging.getLogger("ray"), logging.getLogger("hpo")]
    before = [(lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    with pytest.raises(RuntimeError), ray_logs_to(tmp_path / "ray.log"):
        logging.getLogger("ray.tune").warning("from Ray")
        logging.getLogger("hpo.events").warning("from hpo")
        raise RuntimeError("a search that fails restores them too")
    assert [(lg.handlers, lg.propagate, lg.level) for lg in loggers] == before
    text = (tmp_path / "ray.log").read_text()
    assert "ray.tune: from Ray" in text and "hpo.events: from hpo" in text


def test_environment_sets_only_unset_variables_and_unsets_them(monkeypatch):
    monkeypatch.delenv("HPO_TEST_UNSET", raising=False)
    monkeypatch.setenv("HPO_TEST_USERS", "0")
    with environment({"HPO_TEST_UNSET": "1", "HPO_TEST_USERS": "1"}):
        assert os.environ["HPO_TEST_UNSET"] == "1"
        assert os.environ["HPO_TEST_USERS"] == "0"  # the user's setting wins
    assert "HPO_TEST_UNSET" not in os.environ
    assert os.environ["HPO_TEST_USERS"] == "0"


def test_the_telemetry_patch_applies_to_what_ray_calls_and_is_undone():
    from ray.air._internal import usage
    from ray.tune import tune as ray_tune_module

    original = usage.tag_callbacks
    # Ray's `tune.run` calls it through the module, so replacing the module's attribute works.
    assert ray_tune_module.air_usage is usage
    with without_callback_telemetry():
        assert usage.tag_callbacks is not original
        assert usage.tag_callbacks([object()]) is False
    assert usage.tag_callbacks is original


@pytest.mark.usefixtures("loggers")
def test_quiet_ray_restores_everything_it_changed(tmp_path: Path, monkeypatch):
    from ray.air._internal import usage

    for key in TUNE_ENVIRONMENT:
        monkeypatch.delenv(key, raising=False)
    original = usage.tag_callbacks
    level = logging.getLogger(VARIANT_GENERATOR).level
    with quiet_ray(tmp_path / "ray.log"):
        assert all(os.environ[key] == value for key, value in TUNE_ENVIRONMENT.items())
        assert usage.tag_callbacks is not original
    assert not set(TUNE_ENVIRONMENT) & set(os.environ)
    assert usage.tag_callbacks is original
    assert logging.getLogger(VARIANT_GENERATOR).level == level
