"""The continuation marker: added to a config and split off in one place."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

from hpo.resuming import CONTINUE_KEY, Continuation, mark, split, store_trial_id

HPO = Path(__file__).resolve().parents[2] / "hpo"
CONTINUED = Continuation("t3", 3, "/runs/e/trial_t3/checkpoint_000002", 2, 3)


def test_a_marked_config_splits_back_into_the_config_and_its_continuation():
    config = {"optimizer": {"lr": 0.01}, "model": {"hidden_size": 16}}
    marked = mark(config, CONTINUED)
    assert marked[CONTINUE_KEY] == {
        "trial_id": "t3",
        "number": 3,
        "checkpoint": "/runs/e/trial_t3/checkpoint_000002",
        "iteration": 2,
        "stored": 3,
    }
    assert CONTINUE_KEY not in config  # marking copies
    assert split(marked) == (config, CONTINUED)
    assert CONTINUE_KEY in marked  # and so does splitting


def test_a_new_trial_of_a_resumed_run_has_an_empty_marker_at_every_leaf():
    # Ray merges a continued trial's marker only into keys the base config has.
    marked = mark({"seed": 0}, None)
    assert marked[CONTINUE_KEY] == dict.fromkeys(f.name for f in fields(Continuation))
    assert split(marked) == ({"seed": 0}, None)
    # A continued trial's marker merged leaf by leaf into it names the continuation.
    assert split({**marked, CONTINUE_KEY: CONTINUED.to_config()})[1] == CONTINUED


def test_a_marker_value_reads_back_as_its_continuation_in_one_place():
    # The config's marker and the searcher's enqueued trial (an Optuna user attribute) hold
    # the same form; both read it with `from_config`.
    assert Continuation.from_config(CONTINUED.to_config()) == CONTINUED
    assert Continuation.from_config(mark({}, None)[CONTINUE_KEY]) is None
    assert Continuation.from_config(None) is None


def test_a_config_without_the_marker_is_left_as_it_is():
    config = {"seed": 0}
    assert split(config) == (config, None)
    assert split(config)[0] is config  # nothing to copy for a run that was never resumed


def test_the_store_keeps_a_continued_trial_under_its_first_id_and_others_under_rays():
    continued = SimpleNamespace(trial_id="ray-9", config=mark({}, CONTINUED))
    new = SimpleNamespace(trial_id="ray-10", config=mark({}, None))
    unmarked = SimpleNamespace(trial_id="ray-11", config={})
    assert [store_trial_id(t) for t in (continued, new, unmarked)] == ["t3", "ray-10", "ray-11"]


def test_only_the_marker_module_knows_the_key():
    knows = re.compile(r"CONTINUE_KEY|_hpo_continue")
    allowed = {HPO / "resuming" / "_marker.py", HPO / "resuming" / "__init__.py"}
    found = [
        f"{path.relative_to(HPO.parent)}:{number}"
        for path in sorted(HPO.rglob("*.py"))
        if path not in allowed
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if knows.search(line)
    ]
    assert found == []
