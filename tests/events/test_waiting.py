"""Trials stuck waiting for resources: noticed by the stream, said by the progress view."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from hpo.events import TrialStarted, TrialStream, TrialsWaiting, progress_view
from hpo.events._progress import WAIT_LINE_EVERY_S, LiveView, TrialLines
from hpo.events._waiting import ResourceWait
from hpo.types import TrialStatus
from tests.events.test_event_stream import SPACE, Heard, ray_trial

PENDING, RUNNING, COMPLETED = TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.COMPLETED
ASKED = {"CPU": 1.0, "GPU": 1.0}
FREE = {"CPU": 2.0, "memory": 1e9}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_trials_that_wait_over_a_minute_with_none_running_say_for_what():
    clock = Clock()
    wait = ResourceWait(clock=clock, free=lambda: FREE)
    statuses = [PENDING] * 3
    asked = lambda: ASKED  # noqa: E731
    assert wait.check(statuses, asked) is None
    clock.now = 59.0
    assert wait.check(statuses, asked) is None  # a trial start takes a while: no word yet
    clock.now = 61.0
    assert wait.check(statuses, asked) == (
        "3 trials have waited 61 s for 1 CPU and 1 GPU each; free now: 2 CPUs, 0 GPUs"
    )
    clock.now = 600.0
    assert wait.check(statuses[:1], asked) == (
        "1 trial has waited 10 min for 1 CPU and 1 GPU; free now: 2 CPUs, 0 GPUs"
    )
    # One running: the others wait for it, the search's own pace; the count starts over.
    statuses[0] = RUNNING
    assert wait.check(statuses, asked) is None
    statuses[0] = COMPLETED
    clock.now = 650.0
    assert wait.check(statuses, asked) is None
    clock.now = 711.0
    assert "waited 61 s" in wait.check(statuses, asked)


def test_a_wait_is_said_again_every_few_seconds_and_ray_asked_only_then():
    clock, asked_free = Clock(), []

    def free():
        asked_free.append(clock.now)
        return FREE

    wait = ResourceWait(after_s=60, every_s=5, clock=clock, free=free)
    said = []
    for tick in range(0, 800):  # ten turns of Ray's loop a second
        clock.now = tick / 10
        said.append(wait.check([PENDING], lambda: ASKED) is not None)
    assert asked_free == [60.0, 65.0, 70.0, 75.0]
    assert sum(said) == 4
    assert wait.check([], lambda: ASKED) is None  # nothing pending: nothing to say


def test_the_stream_says_what_its_pending_trials_wait_for_until_one_starts():
    clock = Clock()
    heard = Heard()
    wait = ResourceWait(clock=clock, free=lambda: {"CPU": 0.0, "GPU": 0.0})
    stream = TrialStream([heard], SPACE, "acc", "max", wait=wait)
    factory = SimpleNamespace(required_resources={"CPU": 2.0})
    trials = [ray_trial(f"r{i}", 0.1, placement_group_factory=factory) for i in range(2)]
    stream.setup()
    stream.on_step_begin(0, trials)
    clock.now = 61.0
    stream.on_step_begin(1, trials)
    clock.now = 62.0
    stream.on_step_begin(2, trials)  # said a second ago: not again yet
    assert heard.of(TrialsWaiting) == [
        TrialsWaiting("2 trials have waited 61 s for 2 CPUs each; free now: 0 CPUs, 0 GPUs")
    ]
    stream.on_trial_start(3, trials, trials[0])
    clock.now = 200.0
    stream.on_step_begin(4, trials)  # the other waits for the running one
    assert len(heard.of(TrialsWaiting)) == 1


def view(kind, clock):
    console = Console(file=io.StringIO(), width=200, force_terminal=kind is LiveView)
    return kind(console, metric="acc", mode="max", total=4, clock=clock), console


def test_plain_lines_say_a_wait_when_it_begins_then_every_few_minutes():
    clock = Clock()
    lines, console = view(TrialLines, clock)
    for second in range(0, 700, 5):
        clock.now = second
        lines.receive(TrialsWaiting(f"waited {second} s"))
    shown = console.file.getvalue().splitlines()
    assert shown == ["waiting: waited 0 s", "waiting: waited 300 s", "waiting: waited 600 s"]
    assert WAIT_LINE_EVERY_S == 300
    # A trial starts: the wait is over, and the next one is said at once.
    lines.receive(TrialStarted(trial=None, first=True))
    clock.now = 705
    lines.receive(TrialsWaiting("waited 61 s"))
    assert console.file.getvalue().splitlines()[-1] == "waiting: waited 61 s"


def test_the_live_view_shows_a_wait_as_a_status_line_until_a_trial_starts():
    live, console = view(LiveView, Clock())
    live.receive(TrialsWaiting("1 trial has waited 61 s for 1 GPU; free now: 0 GPUs"))
    rendered = Console(file=io.StringIO(), width=200)
    rendered.print(live.render())
    assert "waiting: 1 trial has waited 61 s for 1 GPU" in rendered.file.getvalue()
    live.receive(TrialStarted(trial=None, first=True))
    assert live.waiting is None
    assert console.file.getvalue() == ""  # the live view draws only in its panel
    assert isinstance(progress_view(console, live=True, metric="m", mode="min", total=1), LiveView)
