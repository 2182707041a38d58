"""What a person sees while a search runs.

In a terminal, one live view (rich) that redraws a few times a second: counts by status, the
best value so far with its params, elapsed time and an estimate of what remains, and the top
trials. Anywhere else (CI, a pipe), or with `-v`, one plain line per finished trial. Ray's
own console output never gets here (see `hpo.runner._quiet`).
"""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hpo.events._recorder import finished_by_itself, trial_number
from hpo.search import Space
from hpo.types import Mode

TOP_TRIALS = 5
REDRAW_S = 0.25


class _Progress(Callback):
    """Counts, the best so far and each trial's best value, kept from Ray's callbacks."""

    def __init__(
        self,
        console: Console,
        *,
        space: Space,
        metric: str,
        mode: str,
        total: int,
        pruned: set[str],
        budget_s: float | None = None,
    ):
        self.console = console
        self.space = space
        self.metric = metric
        self.mode = mode
        self.total = total
        self.pruned = pruned
        self.budget_s = budget_s
        self.started = time.monotonic()
        self.counts = {"running": 0, "completed": 0, "pruned": 0, "failed": 0}
        self.trial_best: dict[
            str, tuple[float, int, int, dict[str, Any]]
        ] = {}  # id -> value, number, epochs, params
        self.best: tuple[float, int] | None = None

    # Ray Tune pickles callbacks with the experiment's state; a console is not picklable.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "console": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, console=Console())

    @property
    def done(self) -> int:
        return self.counts["completed"] + self.counts["pruned"] + self.counts["failed"]

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float | None:
        """Seconds left: from the pace so far, capped by the time budget."""
        estimates = []
        if self.done:
            estimates.append(self.elapsed() / self.done * (self.total - self.done))
        if self.budget_s:
            estimates.append(max(0.0, self.budget_s - self.elapsed()))
        return min(estimates) if estimates else None

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.counts["running"] += 1

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        value = result.get(self.metric)
        if value is None or value != value:
            return
        number = trial_number(trial, trials)
        known = self.trial_best.get(trial.trial_id)
        epochs = int(result.get("training_iteration", 0))
        if known is None or Mode(self.mode).better(value, known[0]):
            self.trial_best[trial.trial_id] = (
                value,
                number,
                epochs,
                self.space.params_of(trial.config),
            )
        else:
            self.trial_best[trial.trial_id] = (known[0], number, epochs, known[3])
        if self.best is None or Mode(self.mode).better(value, self.best[0]):
            self.best = (value, number)

    def _ended(self, trial: Any, trials: list, status: str) -> None:
        self.counts["running"] = max(0, self.counts["running"] - 1)
        self.counts[status] += 1
        self.trial_ended(trial, trials, status)

    def trial_ended(self, trial: Any, trials: list, status: str) -> None:
        """Called once per trial that ends; views add what they show."""

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(
            trial, trials, "completed" if finished_by_itself(trial, self.pruned) else "pruned"
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, trials, "failed")

    def close(self) -> None:
        """Stop drawing (the run ended, or failed)."""


_STYLES = {"completed": "green", "pruned": "yellow", "failed": "red"}


class TrialLines(_Progress):
    """One line whenever a trial ends, with the best value so far: for logs and pipes."""

    def trial_ended(self, trial: Any, trials: list, status: str) -> None:
        result = trial.last_result or {}
        value = result.get(self.metric)
        shown = f"{self.metric} {value:.4f}" if value is not None else "no result"
        best = f"best {self.best[0]:.4f} (trial {self.best[1]})" if self.best else ""
        self.console.print(
            f"trial {trial_number(trial, trials):>3} [{_STYLES[status]}]{status:<9}[/] "
            f"{int(result.get('training_iteration', 0)):>3} epochs  {shown}  {best}"
            f"  [dim]{self.done}/{self.total} done, {self.elapsed():.0f}s[/]",
            highlight=False,
            soft_wrap=True,
        )


class LiveView(_Progress):
    """A live panel for a terminal, redrawn a few times a second."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._live: Live | None = None
        self._drawn = 0.0

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_live": None}

    def setup(self, **info: Any) -> None:
        self._live = Live(self.render(), console=self.console, auto_refresh=False, transient=False)
        self._live.start()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self._live is not None and time.monotonic() - self._drawn >= REDRAW_S:
            self._live.update(self.render(), refresh=True)
            self._drawn = time.monotonic()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._live is not None:
            self._live.update(self.render(), refresh=True)
            self._live.stop()
            self._live = None

    def render(self) -> Group:
        counts = "  ".join(f"{name} {n}" for name, n in self.counts.items())
        pending = max(0, self.total - self.done - self.counts["running"])
        remaining = self.remaining()
        clock = f"{self.elapsed():.0f}s elapsed" + (
            f", about {remaining:.0f}s left" if remaining is not None else ""
        )
        lines = [Text(f"{self.done}/{self.total} trials  pending {pending}  {counts}   {clock}")]
        if self.best is not None:
            value, number = self.best
            params = next((p for v, n, _, p in self.trial_best.values() if n == number), {})
            shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
            lines.append(Text(f"best {self.metric} {value:.4f} (trial {number}): {shown}"))
        table = Table(box=None, pad_edge=False)
        for column in ("#", f"best {self.metric}", "epochs", "params"):
            table.add_column(column, justify="left" if column == "params" else "right")
        ranked = sorted(self.trial_best.values(), key=lambda t: t[0], reverse=self.mode == "max")
        for value, number, epochs, params in ranked[:TOP_TRIALS]:
            table.add_row(
                str(number),
                f"{value:.4f}",
                str(epochs),
                ", ".join(f"{k}={_short(v)}" for k, v in params.items()),
            )
        return Group(*lines, table)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def progress_view(console: Console, *, live: bool, **kwargs: Any) -> _Progress:
    """The live panel in a terminal (unless asked for lines), plain lines elsewhere."""
    return (
        LiveView(console, **kwargs)
        if live and console.is_terminal
        else TrialLines(console, **kwargs)
    )
