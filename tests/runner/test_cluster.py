"""hpo on an existing Ray cluster: two nodes on this machine, started with `ray start` as a user
would (separate raylets, one CPU each), `hpo run --address` as a process, and the store read
afterwards. Each node runs in its own process group, so a test stops (or kills) exactly the
Ray processes it started, never another session's Ray (no `ray stop`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hpo.errors import UsageError
from hpo.results._experiment import Experiment
from hpo.runner._cluster import RayOptions, resolve_address
from hpo.store import Store
from tests.conftest import tiny_spec

RAY = str(Path(sys.executable).with_name("ray"))


def test_the_address_comes_from_the_flag_then_the_spec_then_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    spec = RayOptions(address="head:6379")
    assert resolve_address(None, RayOptions()) is None  # hpo's own local Ray
    monkeypatch.setenv("RAY_ADDRESS", "env-head:6379")
    assert resolve_address(None, RayOptions()) == "env-head:6379"
    assert resolve_address(None, spec) == "head:6379"
    assert resolve_address("auto", spec) == "auto"
    assert resolve_address("local", spec) is None  # a local Ray despite the others
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    with pytest.raises(UsageError, match="Ray Client"):
        resolve_address(None, RayOptions())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TwoNodeCluster:
    """A head node and a worker node, each with one CPU, its own temp dir and ports."""

    def __init__(self, root: Path, auth_mode: str):
        self.root = root
        # Ray's sockets live in its temp dir, and a socket's path has at most 107 bytes.
        self.ray_dir = Path(tempfile.mkdtemp(prefix="hpo-ray-", dir="/tmp"))
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": auth_mode,
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            # With 0 (what the rest of the suite sets), Ray refuses a second node.
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
            "RAY_ADDRESS": "",  # never the address of some other Ray
        }
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.groups: dict[str, int] = {}  # node name -> process group of its Ray processes

    def _start(self, name: str, *args: str) -> None:
        log = self.root / f"{name}.log"
        with log.open("w") as out:
            starter = subprocess.Popen(
                [
                    RAY,
                    "start",
                    "--num-cpus=1",
                    "--node-ip-address=127.0.0.1",
                    f"--dashboard-agent-listen-port={free_port()}",
                    f"--temp-dir={self.ray_dir / name}",
                    "--disable-usage-stats",
                    *args,
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Ray's daemons stay in this new process group after `ray start` returns
                # (its workers get groups of their own, and exit when their raylet dies).
                start_new_session=True,
            )
            self.groups[name] = starter.pid
            if starter.wait(timeout=90) != 0:
                raise RuntimeError(f"ray start ({name}) failed:\n{log.read_text()[-3000:]}")

    def start(self) -> TwoNodeCluster:
        self._start(
            "head",
            "--head",
            f"--port={self.port}",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-port={free_port()}",
            "--include-dashboard=false",
        )
        self._start("worker", f"--address={self.address}")
        return self

    def kill(self, name: str) -> None:
        """Kill one node's Ray processes at once, as if the machine went away: its process
        group and the trial workers its raylet started (each in a group of its own, and able
        to go on training for a while after their raylet died)."""
        group = self.groups.pop(name)
        for pid in [*_processes_under(group)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)

    def stop(self) -> None:
        for name in list(self.groups):
            self.kill(name)
        shutil.rmtree(self.ray_dir, ignore_errors=True)

    def hpo(
        self, *args: str, env: dict[str, str] | None = None, **popen: object
    ) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "hpo", "run", *args, "--address", self.address],
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **popen,
        )


@pytest.fixture
def cluster_factory(tmp_path: Path):
    started: list[TwoNodeCluster] = []

    def start(auth_mode: str) -> TwoNodeCluster:
        cluster = TwoNodeCluster(tmp_path, auth_mode)
        started.append(cluster)
        return cluster.start()

    yield start
    for cluster in started:
        cluster.stop()


def write_spec(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump(tiny_spec(**changes), sort_keys=False))
    return path


def run_to_end(process: subprocess.Popen, timeout: float = 150) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


@pytest.mark.slow
@pytest.mark.ray
def test_a_search_on_two_nodes_records_each_trials_node(tmp_path: Path, cluster_factory):
    cluster = cluster_factory("disabled")
    store = tmp_path / "hpo.db"
    spec = write_spec(tmp_path / "spec.yaml", budget={"num_samples": 4}, checkpoint={"every": 3})

    # The default storage path is this machine's disk: refused before anything is written.
    # (hpo sends a token here, which a cluster that checks none lets in: it warns all the same.)
    token = {"RAY_AUTH_MODE": "token"}
    code, output = run_to_end(
        cluster.hpo(str(spec), "--store", str(store), env=token, cwd=tmp_path)
    )
    assert code == 2, output
    assert "accepts clients without a token" in output
    assert "ray.storage_path: the cluster has 2 nodes" in output
    assert "Traceback" not in output
    assert not store.exists() or Store(f"sqlite:///{store}").experiment_names() == []

    shared = tmp_path / "shared"
    code, output = run_to_end(
        cluster.hpo(
            str(spec), "--store", str(store), "--storage-path", str(shared), "-v", cwd=tmp_path
        )
    )
    assert code == 0, output
    # A cluster that lets anyone in is run on, with a warning that says so.
    assert "accepts clients without a token" in output

    trials = Experiment("tiny", f"sqlite:///{store}").trials()
    assert len(trials) == 4
    assert (trials["status"] == "COMPLETED").all(), trials[["status", "error"]]
    assert (trials["iterations"] == 3).all()
    nodes = trials["node"].value_counts()
    print(f"\ntrials per node: {nodes.to_dict()}")
    # Both raylets ran trials; the hostname is the same, the Ray node id tells them apart.
    assert set(nodes.index) == {node_label(cluster, "head"), node_label(cluster, "worker")}
    # The best trial's checkpoint is in the shared folder, whichever node wrote it.
    assert any(shared.glob("tiny/trial_*/checkpoint_*"))


@pytest.mark.slow
@pytest.mark.ray
def test_a_lost_node_costs_no_trial(tmp_path: Path, cluster_factory):
    cluster = cluster_factory("token")
    store_url = f"sqlite:///{tmp_path / 'hpo.db'}"
    epochs = 40  # about 10 s a trial here, so that the loss comes mid-trial
    spec = write_spec(
        tmp_path / "spec.yaml",
        name="lost",
        training={"epochs": epochs, "batch_size": 16},
        budget={"num_samples": 2, "max_failures": 2},
        checkpoint={"every": 1},
    )
    search = cluster.hpo(
        str(spec),
        "--store",
        store_url,
        "--storage-path",
        str(tmp_path / "shared"),
        "-v",
        cwd=tmp_path,
    )
    try:
        head, victim, killed_at = _kill_the_worker_node_mid_trial(
            cluster, search, store_url, epochs
        )
        code, output = run_to_end(search)
    finally:
        search.kill()
    assert code == 0, output
    assert "without a token" not in output  # this cluster wants one, and hpo had it

    experiment = Experiment("lost", store_url)
    trials = experiment.trials().set_index("trial_id")
    assert len(trials) == 2
    assert (trials["status"] == "COMPLETED").all(), trials[["status", "error"]]
    assert (trials["iterations"] == epochs).all()
    history = experiment.history()
    assert (history.groupby("trial_id")["iteration"].nunique() == epochs).all()
    # The trial on the lost node finished on the head, from its checkpoint: its epochs up to
    # the checkpoint keep their results from before the loss, the rest came after.
    assert trials.loc[victim, "node"] == head
    epochs_of_victim = history[history["trial_id"] == victim].sort_values("iteration")
    before = (pd.to_datetime(epochs_of_victim["reported_at"]) < killed_at).sum()
    assert 1 <= before < epochs, epochs_of_victim[["iteration", "reported_at"]]
    print(
        f"\nlost node: 1 trial retried (from epoch {before} of {epochs}), "
        f"{len(trials) - (trials['status'] == 'COMPLETED').sum()} lost of {len(trials)}; "
        f"trials per node: {trials['node'].value_counts().to_dict()}"
    )


def _kill_the_worker_node_mid_trial(
    cluster: TwoNodeCluster, search: subprocess.Popen, store_url: str, epochs: int
) -> tuple[str, str, pd.Timestamp]:
    """Wait until a trial on each node has checkpointed an epoch or two, then kill the worker
    node. Returns the head's node label, the trial that was on the worker, and when."""
    deadline = time.monotonic() + 90
    problem = None
    while time.monotonic() < deadline and search.poll() is None:
        time.sleep(0.3)
        try:
            trials = Experiment("lost", store_url).trials()
        except Exception as exc:  # the experiment is not in the store yet
            problem = exc
            continue
        running = trials[(trials["status"] == "RUNNING") & trials["node"].notna()]
        if running["node"].nunique() == 2 and (running["iterations"] >= 2).all():
            break
    else:
        search.kill()
        output = search.communicate()[0][-3000:]
        pytest.fail(f"no trial ran on both nodes at once ({problem!r}):\n{output}")
    head_label = node_label(cluster, "head")
    victim = running[running["node"] != head_label]
    assert len(victim) == 1, running[["node", "iterations"]]
    if (victim["iterations"] >= epochs - 1).all():
        pytest.fail("the trial on the worker node finished before it could be lost")
    killed_at = pd.Timestamp.now(tz="UTC").tz_localize(None)
    cluster.kill("worker")
    return head_label, victim["trial_id"].iloc[0], killed_at


def _processes_under(group: int) -> set[int]:
    """The processes of a process group and all their descendants."""
    listing = subprocess.run(["ps", "-eo", "pid=,ppid=,pgid="], capture_output=True, text=True)
    rows = [tuple(map(int, line.split())) for line in listing.stdout.splitlines()]
    found = {pid for pid, _, pgid in rows if pgid == group}
    while True:
        children = {pid for pid, ppid, _ in rows if ppid in found} - found
        if not children:
            return found
        found |= children


def node_label(cluster: TwoNodeCluster, name: str) -> str:
    """The store's label for a node: `hostname/` and the first 8 hex digits of its Ray node id
    (which Ray writes into the names of the node's port files)."""
    port_file = next((cluster.ray_dir / name).glob("session_latest/runtime_env_agent_port_*"))
    return f"{socket.gethostname()}/{port_file.name.rsplit('_', 1)[1][:8]}"
