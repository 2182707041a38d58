"""What a person sees while a search runs.

In a terminal, one live view (rich) that redraws a few times a second: counts by status, the
best value so far with its params, elapsed time and an estimate of what remains, and the top
trials, and what trials wait for when they are stuck for resources. Anywhere else (CI, a pipe),
or with `-v`, one plain line per finished trial, and one for a wait when it is first noticed and
then every few minutes while it lasts. Ray's own console output never gets here (see
`hpo.runner._quiet`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hpo.events._events import (
    Consumer,
    Event,
    SearchEnded,
    SearchStarted,
    StepEnded,
    StoredTrial,
    TrialEnded,
    TrialRepeated,
    TrialReported,
    TrialStarted,
    TrialsWaiting,
)
from hpo.events._front import FrontSoFar
from hpo.pareto import Constraint
from hpo.types import Mode, TrialStatus

TOP_TRIALS = 5
REDRAW_S = 0.25
WAIT_LINE_EVERY_S = 300.0  # how often plain lines repeat that trials still wait

_COUNTED = {
    TrialStatus.COMPLETED: "completed",
    TrialStatus.PRUNED: "pruned",
    TrialStatus.ERROR: "failed",
}


class _Progress(Consumer):
    """Counts, and the trials that reported the metric, kept from the trial events."""

    def __init__(
        self,
        console: Console,
        *,
        metric: str,
        mode: Mode | str,
        total: int,
        budget_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        objectives: Mapping[str, Mode] | None = None,
        constraints: Sequence[Constraint] = (),
    ):
        self.console = console
        self.clock = clock
        self.metric = metric
        self.mode = Mode(mode)
        self.total = total
        self.budget_s = budget_s
        self.started = clock()
        self.waiting: str | None = None  # what trials wait for, while they do
        self.counts = {"running": 0, "completed": 0, "pruned": 0, "failed": 0}
        self.ranked: dict[int, StoredTrial] = {}  # by number: those with a best value
        # With several objectives, the front so far is shown instead of the best value.
        several = objectives is not None and len(objectives) > 1
        self.front = FrontSoFar(objectives, constraints) if several else None

    # Ray Tune pickles callbacks with the experiment's state; a console is not picklable.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "console": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, console=Console())

    @property
    def done(self) -> int:
        return self.counts["completed"] + self.counts["pruned"] + self.counts["failed"]

    @property
    def best(self) -> tuple[float, int] | None:
        """The best value of any trial so far, and that trial's number."""
        best: tuple[float, int] | None = None
        for trial in self.ranked.values():
            value = trial.best[self.metric]
            if best is None or self.mode.better(value, best[0]):
                best = (value, trial.number)
        return best

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float | None:
        """Seconds left: from the pace so far, capped by the time budget."""
        estimates = []
        if self.done:
            estimates.append(self.elapsed() / self.done * (self.total - self.done))
        if self.budget_s:
            estimates.append(max(0.0, self.budget_s - self.elapsed()))
        return min(estimates) if estimates else None

    def receive(self, event: Event) -> None:
        match event:
            case TrialStarted():
                self.counts["running"] += 1
                self.waiting = None
            case TrialsWaiting(message=message):
                self.waiting = message
                self.trials_waiting(message)
            case TrialReported(trial=trial) if self.metric in trial.best:
                self.ranked[trial.number] = trial
            case TrialEnded(trial=trial):
                self.waiting = None  # said again soon if the others still wait
                self.counts["running"] = max(0, self.counts["running"] - 1)
                self.counts[_COUNTED[trial.status]] += 1
                if self.front is not None:
                    self.front.add(trial)
                self.trial_ended(trial)
            case TrialRepeated(trial=trial):  # answered from its original: nothing ran
                self.counts[_COUNTED.get(trial.status, "completed")] += 1
            case SearchStarted():
                self.begin()
            case StepEnded():
                self.tick()
            case SearchEnded():
                self.close()

    def trial_ended(self, trial: StoredTrial) -> None:
        """Called once per trial that ends; views add what they show."""

    def trials_waiting(self, message: str) -> None:
        """Trials are stuck waiting for resources (said every few seconds while they are)."""

    def begin(self) -> None:
        """The search starts: views start drawing."""

    def tick(self) -> None:
        """Ray's loop went round: views redraw, if it is time."""

    def close(self) -> None:
        """Stop drawing (the run ended, or failed)."""


_STYLES = {"completed": "green", "pruned": "yellow", "failed": "red"}


class TrialLines(_Progress):
    """One line whenever a trial ends, with the best value so far: for logs and pipes; and one
    when trials are stuck waiting, then every `WAIT_LINE_EVERY_S` while they still are."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._wait_said: float | None = None  # when the current wait was last said

    def receive(self, event: Event) -> None:
        if isinstance(event, TrialStarted):
            self._wait_said = None  # the wait is over: the next one is said at once
        super().receive(event)

    def trials_waiting(self, message: str) -> None:
        now = self.clock()
        if self._wait_said is not None and now - self._wait_said < WAIT_LINE_EVERY_S:
            return
        self._wait_said = now
        self.console.print(Text(f"waiting: {message}", style="yellow"), soft_wrap=True)

    def trial_ended(self, trial: StoredTrial) -> None:
        status = _COUNTED[trial.status]
        value = trial.last.get(self.metric)
        shown = f"{self.metric} {value:.4f}" if value is not None else "no result"
        best = self.best
        best_shown = f"best {best[0]:.4f} (trial {best[1]})" if best else ""
        if self.front is not None:
            shown = ", ".join(
                f"{name} {_short(trial.last[name])}"
                for name in self.front.objectives
                if name in trial.last
            ) or "no result"
            best_shown = self.front.summary(limit=4)
        self.console.print(
            f"trial {trial.number:>3} [{_STYLES[status]}]{status:<9}[/] "
            f"{trial.iteration:>3} epochs  {shown}  {best_shown}"
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

    def begin(self) -> None:
        self._live = Live(self.render(), console=self.console, auto_refresh=False, transient=False)
        self._live.start()

    def tick(self) -> None:
        if self._live is not None and self.clock() - self._drawn >= REDRAW_S:
            self._live.update(self.render(), refresh=True)
            self._drawn = self.clock()

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
        best = self.best
        if self.front is not None:
            lines.append(Text(self.front.summary()))
        elif best is not None:
            value, number = best
            shown = ", ".join(f"{k}={_short(v)}" for k, v in self.ranked[number].params.items())
            lines.append(Text(f"best {self.metric} {value:.4f} (trial {number}): {shown}"))
        if self.waiting is not None:
            lines.append(Text(f"waiting: {self.waiting}", style="yellow"))
        table = Table(box=None, pad_edge=False)
        for column in ("#", f"best {self.metric}", "epochs", "params"):
            table.add_column(column, justify="left" if column == "params" else "right")
        ranked = sorted(self.ranked.values(), key=lambda t: self.mode.sign * -t.best[self.metric])
        for trial in ranked[:TOP_TRIALS]:
            table.add_row(
                str(trial.number),
                f"{trial.best[self.metric]:.4f}",
                str(trial.iteration),
                ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items()),
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
