"""The quickstart's peak memory as whole processes: `hpo run` beside Optuna alone.

Issue 15's `memory` benchmark. The same two runs as `startup.py` (`hpo run` through the CLI;
Optuna alone, a parent and 2 worker processes on a journal-file study), one after the other.
While each runs, every ~0.2 s this script reads the PSS (`/proc/PID/smaps_rollup`: shared
pages split between the processes that map them, so the sum over processes is what the tree
holds) of the process and all its descendants: Ray's GCS, raylet and agents are children of
hpo's driver, its workers children of the raylet. It prints the tree's peak and, per process
kind, the largest single process and the kind's total at the tree's peak.

    python benchmarks/memory.py            # the quickstart as it is: 30 trials
    python benchmarks/memory.py --quick    # 10 trials

Goals (issue 15): peak PSS at most 1.0 GB; a trial worker at most 320 MB.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import MACHINE, hpo_process, load_average, optuna_process, print_table, verdict

MB = 1e6
KINDS = ["driver", "trial workers", "gcs_server", "raylet", "dashboard + agents", "other"]
# Ray's agents rename themselves too; the dashboard's head process keeps its script's name.
DASHBOARD = ("ray::DashboardAgent", "ray::RuntimeEnvAgent", "dashboard/dashboard.py")


def descendants(root: int) -> list[int]:
    """`root` and every process below it, from the parent ids in `/proc/*/stat`."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # ended meanwhile
                continue
            # The name in parentheses may hold spaces; the parent id is the 2nd field after it.
            children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def kind(pid: int, root: int, cmdline: str) -> str:
    """Which kind of process this is, from its command line (Ray's workers rename themselves
    `ray::<what they run>`, `ray::IDLE` while they wait, counted as trial workers too; Optuna's are multiprocessing's
    `spawn_main`). "other": Ray's log monitor and autoscaler monitor, multiprocessing's
    resource tracker."""
    if pid == root:
        return "driver"
    if any(name in cmdline for name in DASHBOARD):
        return "dashboard + agents"
    if cmdline.startswith("ray::") or "spawn_main" in cmdline:
        return "trial workers"
    program = cmdline.split(" ", 1)[0]
    for name in ("gcs_server", "raylet"):
        if program.endswith(name):
            return name
    return "other"


def sample(root: int) -> list[tuple[str, float]]:
    """(kind, PSS in bytes) of each process in the tree now."""
    found = []
    for pid in descendants(root):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:  # ended meanwhile, or a kernel thread
            continue
        pss = next(
            (line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:")), "0"
        )
        found.append((kind(pid, root, cmdline.strip()), int(pss) * 1024.0))
    return found


class Peaks:
    """The tree's peak PSS with its split by kind, and each kind's largest single process."""

    def __init__(self) -> None:
        self.total = 0.0
        self.at_peak: dict[str, float] = {}
        self.largest: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)

    def add(self, processes: list[tuple[str, float]]) -> None:
        by_kind: dict[str, float] = defaultdict(float)
        numbers: dict[str, int] = defaultdict(int)
        for name, pss in processes:
            by_kind[name] += pss
            numbers[name] += 1
            self.largest[name] = max(self.largest[name], pss)
        for name, number in numbers.items():
            self.count[name] = max(self.count[name], number)
        if sum(by_kind.values()) > self.total:
            self.total, self.at_peak = sum(by_kind.values()), dict(by_kind)


def measure(run: Any) -> Peaks:
    """Run the process to its end, sampling its tree every ~0.2 s from a thread."""
    peaks = Peaks()
    process = run.start()
    done = threading.Event()

    def sampler() -> None:
        while not done.wait(0.2):
            peaks.add(sample(process.pid))

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    try:
        run.finish(process)
    finally:
        done.set()
        thread.join()
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 trials instead of 30")
    args = parser.parse_args()
    overrides: dict[str, Any] = {"budget.num_samples": 10} if args.quick else {}

    print(f"Machine: {MACHINE}; at the start: {load_average()}")
    results: dict[str, tuple[Peaks, float]] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-memory-") as tmp:
        for make in (hpo_process, optuna_process):
            workdir = Path(tmp) / make.__name__
            workdir.mkdir()
            run = make(workdir, overrides)
            peaks = measure(run)
            results[run.label] = (peaks, run.ended - run.started)
            print(f"  {run.label}: peak {peaks.total / MB:,.0f} MB", flush=True)

    rows = []
    for label, (peaks, _wall) in results.items():
        worker = peaks.largest.get("trial workers", 0.0)
        rows.append(
            [
                f"{label} (whole tree)",
                "",
                "",
                peaks.total / MB,
                f"{peaks.total / MB / 1000:.2f} (<= 1.0 GB: {verdict(peaks.total <= 1000 * MB)})",
            ]
        )
        for name in KINDS:
            if name in peaks.count:
                goal = ""
                if name == "trial workers":
                    goal = f"{worker / MB / 320:.2f} (<= 320 MB: {verdict(worker <= 320 * MB)})"
                rows.append(
                    [
                        f"  {name}",
                        peaks.count[name],
                        peaks.largest[name] / MB,
                        peaks.at_peak.get(name, 0.0) / MB,
                        goal,
                    ]
                )
    print_table(
        "Peak PSS, MB (10^6 bytes), sampled every ~0.2 s (digits MLP, TPE + successive halving)",
        ["", "processes (most at once)", "largest one", "at the tree's peak", "ratio to goal"],
        rows,
    )
    print(
        "\nThe largest process of a kind and the tree's peak may come from different moments."
        f" One run each. At the end: {load_average()}."
    )


if __name__ == "__main__":
    main()
