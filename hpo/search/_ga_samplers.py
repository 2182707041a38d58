"""Optuna's genetic samplers, made picklable: Ray pickles the searcher (and its sampler) when
it saves the experiment, but Optuna 5's `BaseGASampler` holds a `threading.Lock`, which
cannot be pickled. These subclasses drop the lock from their state and make a new one when
unpickled; nothing else changes (a test pickles both and checks they sample the same).

Imported only when such a sampler is built: it imports Optuna.
"""

from __future__ import annotations

import threading
from typing import Any

from optuna.samplers import NSGAIIISampler, NSGAIISampler


class _LockFree:
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


class PicklableNSGAII(_LockFree, NSGAIISampler):
    """Optuna's NSGAIISampler, picklable."""


class PicklableNSGAIII(_LockFree, NSGAIIISampler):
    """Optuna's NSGAIIISampler, picklable."""


# Optuna names a genetic sampler's attributes after its class: keep Optuna's own names, so
# that a study of these reads as one of Optuna's samplers (in optuna-dashboard too).
for _ours, _optunas in ((PicklableNSGAII, NSGAIISampler), (PicklableNSGAIII, NSGAIIISampler)):
    _ours._GENERATION_KEY = _optunas._GENERATION_KEY
    _ours._PARENT_CACHE_KEY_PREFIX = _optunas._PARENT_CACHE_KEY_PREFIX
