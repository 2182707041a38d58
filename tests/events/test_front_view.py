"""With several objectives, the lines and the live view show the front so far, not a best."""

from __future__ import annotations

import io

from rich.console import Console

from hpo.events import TrialEnded
from hpo.events._events import StoredTrial
from hpo.events._progress import LiveView, TrialLines
from hpo.pareto import parse_constraint
from hpo.types import Mode, TrialStatus

OBJECTIVES = {"val_accuracy": Mode.MAX, "n_params": Mode.MIN}


def _ended(number: int, accuracy: float, n_params: int, status=TrialStatus.COMPLETED):
    last = {"val_accuracy": accuracy, "n_params": n_params}
    trial = StoredTrial(f"t{number}", number, {"x": number}, {}, status, 3, last, last)
    return TrialEnded(trial=trial)


def _view(kind, out: io.StringIO):
    console = Console(file=out, width=200, force_terminal=False)
    return kind(
        console,
        metric="val_accuracy",
        mode="max",
        total=4,
        objectives=OBJECTIVES,
        constraints=[parse_constraint("n_params <= 3000")],
    )


def test_each_line_shows_the_front_so_far():
    out = io.StringIO()
    view = _view(TrialLines, out)
    for event in (
        _ended(0, 0.95, 2000),
        _ended(1, 0.94, 2500),  # dominated by 0
        _ended(2, 0.99, 9000),  # better, but infeasible
        _ended(3, 0.90, 500),
    ):
        view.receive(event)
    lines = out.getvalue().splitlines()
    assert "val_accuracy 0.95, n_params 2000" in lines[0] and "front 1: #0 (0.95, 2000)" in lines[0]
    assert "front 1: #0" in lines[1]
    assert "front 1: #0" in lines[2]  # the infeasible trial stays off
    assert "front 2: #0 (0.95, 2000), #3 (0.9, 500)" in lines[3]
    assert "best" not in lines[3]


def test_the_live_panel_shows_the_front_instead_of_a_best():
    out = io.StringIO()
    view = _view(LiveView, out)
    view.receive(_ended(0, 0.95, 2000))
    view.receive(_ended(1, 0.90, 500))
    view.console.print(view.render())
    assert "front 2: #0 (0.95, 2000), #1 (0.9, 500)" in out.getvalue()
    assert "best val_accuracy" not in out.getvalue().splitlines()[1]
