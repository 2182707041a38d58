"""A trial no node can hold is refused before anything is written (exit 2, naming the key);
on a cluster that can add nodes hpo warns and goes on (trials that wait say what for:
`tests/events/test_waiting.py`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from hpo.errors import SpecError
from hpo.runner._resources import Request, can_autoscale, check_resources, unmet
from hpo.runner._runner import run
from hpo.spec import load_spec
from tests.conftest import SEARCH_SPACES, tiny_spec

ONE_CPU_NODE = {"CPU": 1.0, "memory": 1e9, "node:127.0.0.1": 1.0}
TWO_CPUS = {"CPU": 2.0, "memory": 1e9}
GPU_NODE = {"CPU": 2.0, "GPU": 1.0}
BIG_CPU_NODE = {"CPU": 8.0}
GPU_1 = ["--set", "resources.gpu=1"]


def request(cpu: float = 1, gpu: float = 0, workers: int = 1) -> Request:
    return Request.of(
        load_spec(tiny_spec(resources={"cpu": cpu, "gpu": gpu, "workers": workers})).resources
    )


@pytest.mark.parametrize(
    ("asked", "nodes", "key", "message"),
    [
        (
            request(gpu=1),
            [TWO_CPUS],
            "resources.gpu",
            "1 per trial, but this Ray has 0 GPUs; set resources.gpu: 0 or pass --address of "
            "a cluster with GPUs",
        ),
        (
            request(cpu=4),
            [TWO_CPUS],
            "resources.cpu",
            "4 per trial, but this Ray has 2 CPUs; set resources.cpu to at most 2 or pass "
            "--address of a larger cluster",
        ),
        (
            request(cpu=4),
            [TWO_CPUS, TWO_CPUS],  # 4 CPUs in all, but a trial runs on one node
            "resources.cpu",
            "4 per trial, but the largest node of this Ray has 2 CPUs",
        ),
        (
            request(gpu=2),
            [GPU_NODE, GPU_NODE],
            "resources.gpu",
            "2 per trial, but the largest node of this Ray has 1 GPU; set resources.gpu to at "
            "most 1",
        ),
        (
            request(cpu=4, gpu=1),  # the CPUs on one node, the GPU on another
            [BIG_CPU_NODE, GPU_NODE],
            "resources",
            "4 CPUs and 1 GPU per trial, but no node of this Ray has all of it (its nodes have "
            "8 CPUs, 0 GPUs; 2 CPUs, 1 GPU)",
        ),
        (
            request(cpu=4, workers=2),
            [TWO_CPUS, TWO_CPUS],
            "resources.cpu",
            "4 per worker, but the largest node of this Ray has 2 CPUs",
        ),
        (
            # Two workers of one CPU: two CPUs, but the trial's own process takes a sliver.
            request(cpu=1, workers=2),
            [TWO_CPUS],
            "resources.workers",
            "2 workers of 1 CPU each, but this Ray can hold 1 at once beside the trial's own "
            "process (its nodes have 2 CPUs, 0 GPUs)",
        ),
        (
            # Six CPUs in all, but a node of three holds one worker of two.
            request(cpu=2, workers=3),
            [{"CPU": 3.0}, {"CPU": 3.0}],
            "resources.workers",
            "3 workers of 2 CPUs each, but this Ray can hold 2 at once",
        ),
    ],
)
def test_a_request_no_node_can_hold_names_its_key(asked, nodes, key, message):
    issue = unmet(asked, nodes)
    assert issue is not None
    assert issue.key == key
    assert message in issue.message


@pytest.mark.parametrize(
    ("asked", "nodes"),
    [
        (request(), [ONE_CPU_NODE]),
        (request(cpu=0.5), [{"CPU": 0.5}]),
        (request(cpu=2, gpu=1), [BIG_CPU_NODE, GPU_NODE]),
        (request(cpu=0.5, workers=2), [TWO_CPUS]),  # the DDP test's own request
        (request(cpu=2, workers=3), [{"CPU": 3.0}, {"CPU": 3.0}, {"CPU": 2.0}]),
        (request(cpu=1, gpu=1, workers=2), [GPU_NODE, GPU_NODE]),
    ],
)
def test_a_request_some_node_holds_passes(asked, nodes):
    assert unmet(asked, nodes) is None


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_the_ray_of_the_tests_cannot_autoscale_and_one_that_says_so_can():
    import ray._raylet
    from ray.core.generated import autoscaler_pb2
    from ray.experimental import internal_kv

    assert not can_autoscale()
    # What Ray's autoscaler publishes for a cluster that may launch up to 4 GPU nodes.
    config = autoscaler_pb2.ClusterConfig()
    group = config.node_group_configs.add(name="gpu", min_count=0, max_count=4)
    group.resources.update({"CPU": 8, "GPU": 1})
    key = ray._raylet.GCS_AUTOSCALER_CLUSTER_CONFIG_KEY
    namespace = ray._raylet.GCS_AUTOSCALER_STATE_NAMESPACE
    internal_kv._internal_kv_put(key, config.SerializeToString(), namespace=namespace)
    try:
        assert can_autoscale()
        console = Console(record=True, width=200)
        check_resources(load_spec(tiny_spec(resources={"gpu": 1})), console)  # no error
        said = console.export_text()
        assert "warning: resources.gpu: 1 per trial, but this Ray has 0 GPUs" in said
        assert "hpo goes on" in said
    finally:
        internal_kv._internal_kv_del(key, namespace=namespace)
    assert not can_autoscale()


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_a_ddp_group_too_large_for_the_ray_is_refused_before_the_store_is_written(workdir: Path):
    store = workdir / "hpo.db"
    with pytest.raises(SpecError, match=r"resources\.workers: 2 workers of 1 CPU each"):
        run(tiny_spec(resources={"cpu": 1, "workers": 2}), store=f"sqlite:///{store}")
    assert not store.exists()
    assert not (workdir / "hpo-results").exists()


@pytest.mark.ray
@pytest.mark.slow
def test_a_gpu_trial_on_a_ray_without_gpus_exits_2_naming_the_key(workdir: Path):
    # A process of its own, as a user runs it: it starts its own local Ray (this machine's,
    # without GPUs) and must end soon after, not wait for a GPU forever.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "hpo", "run", str(SEARCH_SPACES / "digits_mlp.yaml"), *GPU_1],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert (
        "resources.gpu: 1 per trial, but this Ray has 0 GPUs; set resources.gpu: 0 or pass "
        "--address of a cluster with GPUs"
    ) in done.stderr
    assert "Traceback" not in done.stderr
    assert list(workdir.iterdir()) == []  # no store, no experiment folder
