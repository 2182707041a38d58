"""A trial's memory: its peak, running out of it, and giving it back.

Running out of memory is what a configuration does (too large a batch or model for the
device), not a bug in the code: the trial fails with the error type `out_of_memory`, a
message naming the batch size and the peak memory, and the searcher learns to avoid the
region. `training.on_oom: split` instead retries the step in micro-batches (see `Pipeline`).

The peak is CUDA's `max_memory_allocated` on a GPU, else the growth of the process's peak
resident set over the trial (on Linux the peak is reset at the trial's start, so a reused Ray
worker measures each trial alone). This module imports torch only where it measures a device,
so the driver (which classifies errors) loads it without torch.
"""

from __future__ import annotations

import contextlib
import gc
import re
import resource
import sys
from pathlib import Path
from typing import Any

# The error type the store keeps for every kind of running out of memory.
OUT_OF_MEMORY = "out_of_memory"

# torch.OutOfMemoryError (CUDA, and MPS since torch 2.5) and the host's MemoryError.
_OOM_CLASSES = {"OutOfMemoryError", "MemoryError"}
# Older torch raised a bare RuntimeError for MPS and CUDA ("MPS backend out of memory", "CUDA
# out of memory. Tried to allocate ...").
_OOM_TEXT = re.compile(r"\bout of memory\b", re.IGNORECASE)

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is a device or host running out of memory (by class, without torch)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _OOM_CLASSES:
        return True
    return isinstance(exc, RuntimeError) and bool(_OOM_TEXT.search(str(exc)))


class TrialOutOfMemory(MemoryError):
    """A trial ran out of memory: what it was doing, with which batch, at which peak.

    Attributes:
        batch_size: the searched `training.batch_size`.
        micro_batches: how many pieces each batch was cut into when it ran out.
        peak_memory_mb: the trial's peak memory, in MiB (None where it is not measured).
    """

    error_type = OUT_OF_MEMORY

    def __init__(
        self, message: str, *, batch_size: int, micro_batches: int, peak_memory_mb: float | None
    ):
        super().__init__(message)
        self.batch_size = batch_size
        self.micro_batches = micro_batches
        self.peak_memory_mb = peak_memory_mb

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments: pickled to the driver by Ray, rebuilt there whole.
        return (_rebuild, (str(self), self.batch_size, self.micro_batches, self.peak_memory_mb))


def _rebuild(
    message: str, batch_size: int, micro_batches: int, peak_memory_mb: float | None
) -> TrialOutOfMemory:
    return TrialOutOfMemory(
        message, batch_size=batch_size, micro_batches=micro_batches, peak_memory_mb=peak_memory_mb
    )


class PeakMemory:
    """The peak memory of one trial on `device`, from the moment it is made.

    Args:
        device: a torch device (or its type's name): "cuda" measures CUDA's allocator, any
            other the process's resident set.
    """

    def __init__(self, device: Any):
        self.cuda = getattr(device, "type", str(device)) == "cuda"
        self.device = device
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(device)
            self._start = 0.0
        else:
            _reset_peak_rss()
            self._start = _current_rss_mb()

    def peak_mb(self) -> float:
        """The peak so far, in MiB: allocated on CUDA, else the resident set's growth."""
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return max(0.0, _peak_rss_mb() - self._start)


def release_memory(device: Any) -> None:
    """Give back what a failed step or trial held: collect its cycles, empty the caches.

    Call it where no exception is being handled: the traceback of one being handled keeps
    its frames, and the tensors in them, alive.
    """
    gc.collect()
    kind = getattr(device, "type", str(device))
    if kind in ("cuda", "mps"):
        import torch

        if kind == "cuda":
            torch.cuda.empty_cache()
        else:
            torch.mps.empty_cache()


def _status_kb(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> None:
    """Reset the process's peak resident set to its current one (Linux 4.0+), so that a Ray
    worker reused for the next trial does not report the previous trial's peak."""
    # Elsewhere (macOS, older kernels) the peak since the process began is what there is.
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")


def _current_rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else _peak_rss_mb()


def _peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, Linux kilobytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
