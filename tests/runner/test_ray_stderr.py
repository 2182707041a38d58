"""No line of Ray's C++ core reaches the terminal while hpo holds Ray, or after a stop.

The line seen after a Ctrl-C, "Failed to connect to GCS within 60 seconds ...", is what the
driver's core worker writes to the process's stderr when Ray's GCS goes away under it. Here
the GCS of `hpo run`'s own local Ray is killed mid-search, and the wait shortened to a few
seconds (Ray's `gcs_rpc_server_reconnect_timeout_s`), to bring that line about.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SEARCH_SPACES

pytestmark = [pytest.mark.ray, pytest.mark.slow]

GCS_LOST = "Failed to connect to GCS"


def _children(pid: int) -> list[tuple[int, str]]:
    """The direct children of `pid`, with their command names (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if int(rest.split()[1]) == pid:
            found.append((int(entry.name), name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray's GCS in /proc")
def test_the_core_workers_gcs_error_goes_to_the_ray_log_not_the_terminal(workdir: Path):
    env = {**os.environ, "RAY_gcs_rpc_server_reconnect_timeout_s": "3"}
    spec = SEARCH_SPACES / "digits_mlp.yaml"
    err = (workdir / "stderr.txt").open("w")
    out = (workdir / "stdout.txt").open("w")
    hpo = subprocess.Popen(
        [sys.executable, "-m", "hpo", "run", str(spec), "--set", "training.epochs=200"],
        stdout=out,
        stderr=err,
        env=env,
    )
    try:
        deadline = time.monotonic() + 150
        while "trial" not in (workdir / "stdout.txt").read_text().split("\n", 1)[-1]:
            assert hpo.poll() is None, (workdir / "stderr.txt").read_text()
            assert time.monotonic() < deadline, "no trial ran"
            time.sleep(0.5)
        gcs = [pid for pid, name in _children(hpo.pid) if name == "gcs_server"]
        assert len(gcs) == 1  # hpo's own local Ray, started by this process
        os.kill(gcs[0], signal.SIGKILL)
        hpo.wait(timeout=120)  # Ray's core ends the process once the GCS is gone
    finally:
        if hpo.poll() is None:
            hpo.kill()
            hpo.wait()
        err.close()
        out.close()
    assert GCS_LOST not in (workdir / "stderr.txt").read_text()
    log = workdir / "hpo-results" / "digits_mlp" / "ray.log"
    assert GCS_LOST in log.read_text()  # the situation came about, out of sight
