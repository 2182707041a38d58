"""Keeping Ray quiet during a search: its environment, its telemetry and its log records.

Everything here is set for the run only and restored when it ends (`quiet_ray`).
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

# Read by Ray Tune while it runs; set only for hpo's runs, and only where the user has not.
TUNE_ENVIRONMENT = {
    # Ray's per-trial JSON/CSV/TensorBoard loggers duplicate what the store keeps and cost
    # time per result; experts can turn them back on by setting the variable to 0.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Ray's newer console output prints its banner even at verbose=0; hpo reports instead.
    "RAY_AIR_NEW_OUTPUT": "0",
    # hpo handles Ctrl-C itself (`hpo.runner._signals`), also marking the store.
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}

# hpo hands Ray's variant generator whole configurations over a base that holds every
# searched key; Ray warns about each such value, which says nothing to a reader.
_SILENCED = {"ray.tune.search.variant_generator": logging.ERROR}


@contextmanager
def quiet_ray(log_path: Path) -> Iterator[None]:
    """Everything below, for one search: Ray's log records go to `log_path`."""
    with ExitStack() as stack:
        stack.enter_context(ray_logs_to(log_path))
        stack.enter_context(environment(TUNE_ENVIRONMENT))
        stack.enter_context(without_callback_telemetry())
        yield


@contextmanager
def environment(defaults: dict[str, str]) -> Iterator[None]:
    """Set environment variables that are not set yet, and unset them afterwards."""
    added = {key: value for key, value in defaults.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextmanager
def without_callback_telemetry() -> Iterator[None]:
    """Skip Ray's usage-telemetry tag of a run's callbacks, and only that.

    To name the built-in callbacks it counts, Ray imports its MLflow, W&B, Comet and Aim
    integrations in every run that has callbacks (hpo's always has): with MLflow installed,
    1 to 4 s before the first trial can start, for a tag that would only say "CustomCallback".
    """
    from ray.air._internal import usage

    original = getattr(usage, "tag_callbacks", None)
    if original is None:  # a Ray without it: nothing to skip
        yield
        return
    usage.tag_callbacks = lambda callbacks: False
    try:
        yield
    finally:
        usage.tag_callbacks = original


@contextmanager
def ray_logs_to(path: Path) -> Iterator[None]:
    """Send Ray's log records (trial tracebacks included), and those of hpo's own callbacks,
    to a file in the experiment's folder instead of the terminal.

    The store keeps each failed trial's error, and the summary shows it; the terminal shows
    hpo's own progress only.
    """
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    redirected = [logging.getLogger(name) for name in ("ray", "hpo")]
    silenced = [logging.getLogger(name) for name in _SILENCED]
    saved = [
        (logger, logger.handlers, logger.propagate, logger.level)
        for logger in [*redirected, *silenced]
    ]
    for logger in redirected:
        logger.handlers, logger.propagate = [handler], False
        logger.setLevel(logging.WARNING)
    for logger in silenced:
        logger.setLevel(_SILENCED[logger.name])
    try:
        yield
    finally:
        for logger, handlers, propagate, level in saved:
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        handler.close()


@contextmanager
def native_stderr_to(path: Path) -> Iterator[None]:
    """Send what Ray's C++ core writes to this process's stderr to `path`, while Python's
    own `sys.stderr` (hpo's messages, tracebacks) still reaches the terminal.

    The driver's core worker writes its errors straight to file descriptor 2, from its own
    threads, past Python's logging: "Failed to connect to GCS within 60 seconds ... The
    program will terminate." when the GCS goes away while hpo is still connected (a Ctrl-C
    or a lack of memory that reached it, a stop that takes long). So while hpo holds Ray,
    descriptor 2 is the log file, and `sys.stderr` a stream on the terminal's descriptor.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        sys.stderr.flush()
        on_fd_2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a captured stream: it has no descriptor
        on_fd_2 = False
    terminal = os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    os.close(log)
    previous = sys.stderr
    if on_fd_2:
        sys.stderr = io.TextIOWrapper(
            io.FileIO(terminal, "w", closefd=False),
            encoding=previous.encoding,
            errors=previous.errors,
            line_buffering=True,
        )
    try:
        yield
    finally:
        if on_fd_2:
            sys.stderr.flush()
            sys.stderr = previous
        os.dup2(terminal, 2)
        os.close(terminal)
