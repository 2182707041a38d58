"""hpo's own local Ray runs only the processes a search needs, and its workers import the
trainable as they start (`hpo.runner._local_ray`).

In a fresh interpreter: the session's Ray of the other tests was started by plain `ray.init`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hpo.runner._local_ray import lean_head

PROBE = """
import json, os, subprocess, sys, time
import ray
from hpo.runner._local_ray import init_local

init_local(preload=["json.tool"])
def tree(root):
    rows = subprocess.run(["ps", "-ww", "-e", "-o", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    kids, args = {}, {}
    for line in rows.splitlines():
        pid, ppid, command = line.split(None, 2)
        kids.setdefault(int(ppid), []).append(int(pid))
        args[int(pid)] = command
    todo, found = [root], []
    while todo:
        pid = todo.pop()
        found.append(args.get(pid, ""))
        todo += kids.get(pid, [])
    return found

@ray.remote(num_cpus=1)
def preloaded():
    return "json.tool" in sys.modules

answer = ray.get(preloaded.remote(), timeout=120)
processes = tree(os.getpid())
ray.shutdown()
print(json.dumps({"preloaded": answer, "processes": processes}))
"""


@pytest.mark.ray
def test_a_local_ray_starts_no_process_a_search_does_not_need():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    processes = " | ".join(record["processes"])
    for unneeded in ("dashboard/dashboard.py", "log_monitor.py", "autoscaler/_private/monitor.py"):
        assert unneeded not in processes
    # What the raylet cannot run without, and what runs the trials.
    for needed in ("gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"):
        assert needed in processes
    assert record["preloaded"] is True  # the worker imported it before it was asked to


def test_the_lean_head_patch_still_applies_and_is_undone():
    from ray._private import node as ray_node

    before = (ray_node.Node.__init__, ray_node.Node.start_api_server)
    with lean_head():
        assert (ray_node.Node.__init__, ray_node.Node.start_api_server) != before
    assert (ray_node.Node.__init__, ray_node.Node.start_api_server) == before
