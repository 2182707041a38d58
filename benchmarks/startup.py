"""The quickstart's timeline as whole processes: `hpo run` beside Optuna alone.

Issue 15's `startup` benchmark. Each side is a fresh process started by this script, one
after the other, in its own temporary folder:

- `hpo run search_spaces/digits_mlp.yaml` through the CLI (a local Ray it starts itself);
- Optuna alone as its docs show it: a process that creates a journal-file study and 2 worker
  processes sharing it, TPE + successive halving, the same torch MLP on the same digits split
  (`_common.run_optuna`, which `search_digits.py` times in-process).

For each: process start -> first trial running -> last trial ended -> exit; the trials' times
come from what each run wrote (hpo's store: a trial runs from Ray's start of it, before its
worker has imported torch; Optuna's journal: from a worker's `ask`, after its imports).

    python benchmarks/startup.py            # the quickstart as it is: 30 trials
    python benchmarks/startup.py --quick    # 10 trials

Goal (issue 15): hpo no slower than Optuna alone, whole process.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    MACHINE,
    hpo_process,
    load_average,
    optuna_process,
    print_table,
    trial_span,
    verdict,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 trials instead of 30")
    args = parser.parse_args()
    overrides: dict[str, Any] = {"budget.num_samples": 10} if args.quick else {}

    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    rows = []
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-startup-") as tmp:
        for make in (hpo_process, optuna_process):
            workdir = Path(tmp) / make.__name__
            workdir.mkdir()
            run = make(workdir, overrides)
            run.finish(run.start())
            first, last = trial_span(run)
            walls[run.label] = run.ended - run.started
            rows.append(
                [
                    run.label,
                    first - run.started,
                    last - run.started,
                    run.ended - run.started,
                    last - first,
                    run.ended - last,
                ]
            )
            print(f"  {run.label}: {walls[run.label]:.1f} s", flush=True)

    ratio = walls["hpo run"] / walls["Optuna alone"]
    rows[0] += [f"{ratio:.2f}x", "<= 1.00x", verdict(ratio <= 1.0)]
    rows[1] += ["1.00x", "", ""]
    print_table(
        "Seconds from the process's start (digits MLP, TPE + successive halving, 2 workers)",
        [
            "",
            "first trial running",
            "last trial ended",
            "exit",
            "trials",
            "after the last trial",
            "wall / Optuna's",
            "goal",
            "",
        ],
        rows,
    )
    print(f"\nOne run each; numbers from a shared, noisy machine. At the end: {load_average()}.")


if __name__ == "__main__":
    main()
