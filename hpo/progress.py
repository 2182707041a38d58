"""What a person sees while a search runs: one line per finished trial."""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback
from rich.console import Console

from hpo.metrics import better
from hpo.recording import finished_by_itself, trial_number


class TrialLines(Callback):
    """Prints a line whenever a trial ends, with the best value so far."""

    def __init__(self, console: Console, metric: str, mode: str, total: int, pruned: set[str]):
        self.console = console
        self.pruned = pruned
        self.metric = metric
        self.total = total
        self.mode = mode
        self.best: tuple[float, int] | None = None
        self.done = 0
        self.started = time.monotonic()

    # Ray Tune pickles callbacks with the experiment's state; a console is not picklable.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "console": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, console=Console())

    def _line(self, trial: Any, trials: list, status: str, style: str) -> None:
        self.done += 1
        number = trial_number(trial, trials)
        result = trial.last_result or {}
        value = result.get(self.metric)
        # A trial's best epoch, as the store and `hpo show` rank trials.
        trial_best = trial.metric_analysis.get(self.metric, {}).get(self.mode)
        if trial_best is not None and (
            self.best is None or better(trial_best, self.best[0], self.mode)
        ):
            self.best = (trial_best, number)
        shown = f"{self.metric} {value:.4f}" if value is not None else "no result"
        best = f"best {self.best[0]:.4f} (trial {self.best[1]})" if self.best else ""
        epochs = result.get("training_iteration", 0)
        elapsed = time.monotonic() - self.started
        self.console.print(
            f"trial {number:>3} [{style}]{status:<9}[/] {epochs:>3} epochs  {shown}  {best}"
            f"  [dim]{self.done}/{self.total} done, {elapsed:.0f}s[/]",
            highlight=False,
            soft_wrap=True,
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        done = finished_by_itself(trial, self.pruned)
        self._line(trial, trials, "completed" if done else "pruned", "green" if done else "yellow")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trial, trials, "error", "red")
