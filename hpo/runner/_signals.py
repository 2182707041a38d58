"""Ctrl-C and SIGTERM during a search: the first stops it gracefully, a second at once.

The first signal asks Ray Tune to stop (through a `Stopper`, so that Ray stops the trials
and saves its state as at any end of a run); the runner then marks the experiment and its
unfinished trials interrupted and says how to resume. A second signal records that much in
the store and exits straight away with 130; `hpo resume` works after either.

SIGTERM is what a preempted machine or a batch system sends first: it is treated as Ctrl-C.
Ray's own Ctrl-C handler is turned off for hpo's runs (`TUNE_DISABLE_SIGINT_HANDLER`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ray import tune

# Module-level, not in the stopper: Ray pickles its stopper with the experiment's state.
_stop_requested = threading.Event()


class StopRequested(tune.Stopper):
    """Stops the whole search once a signal asked for it."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return _stop_requested.is_set()


@contextmanager
def stop_on_signals(at_once: Callable[[], None]) -> Iterator[threading.Event]:
    """Within the block, SIGINT and SIGTERM request a graceful stop (the event is set); a
    second one calls `at_once` and exits the process with 130."""
    _stop_requested.clear()

    def handle(signum: int, _frame: Any) -> None:
        if _stop_requested.is_set():
            sys.stderr.write("\nStopping at once.\n")
            try:
                at_once()
            finally:
                os._exit(130)
        _stop_requested.set()
        sys.stderr.write(
            "\nStopping: running trials are saved at their last checkpoint "
            "(press Ctrl-C again to stop at once).\n"
        )

    if threading.current_thread() is not threading.main_thread():
        yield _stop_requested  # signals reach the main thread only
        return
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield _stop_requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
