"""Whether the cluster can ever hold one trial, asked once before any trial.

Ray never refuses a request no node can hold: it keeps the trial PENDING and says so, after a
minute, in a warning that hpo's quiet console hides. So hpo compares one trial's request with
the nodes' totals itself, right after connecting, and refuses it as it refuses a bad spec:
before the experiment is created. A cluster that can add nodes may still grow to hold it:
there hpo only warns. (While trials wait, the trial stream says what for:
`hpo.events._waiting`.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from hpo.errors import SpecError, SpecIssue
from hpo.events import RESOURCE_NAMES, amount_text, bundle_text, number_text
from hpo.spec import Spec

_KEYS = {"CPU": "resources.cpu", "GPU": "resources.gpu"}
# Ray holds fractional resources in units of 1/10000; compare at that grain.
_GRAIN = 1e-4


@dataclass(frozen=True)
class Request:
    """What one trial asks of the cluster.

    Attributes:
        trial: the trial's own process (for a DDP trial, the sliver that waits for its group).
        worker: what each process of a DDP group holds (empty for a one-process trial).
        workers: how many such processes (0 for a one-process trial).
    """

    trial: Mapping[str, float]
    worker: Mapping[str, float]
    workers: int

    @classmethod
    def of(cls, resources: Any) -> Request:
        """The request of the spec's `resources` section, as `trial_resources` reserves it."""
        own = trial_resources(resources)
        if resources.workers > 1:  # the group's workers hold the trial's real resources
            worker = _bundle(resources.cpu, resources.gpu)
            return cls(_bundle(own["cpu"], own["gpu"]), worker, resources.workers)
        return cls(_bundle(own["cpu"], own["gpu"]), {}, 0)


def trial_resources(resources: Any) -> dict[str, float]:
    """What Ray Tune reserves for one trial; a DDP trial's workers reserve their own."""
    if resources.workers > 1:
        from hpo.trainable.distributed import DRIVER_CPU

        return {"cpu": DRIVER_CPU, "gpu": 0}
    return {"cpu": resources.cpu, "gpu": resources.gpu}


def _bundle(cpu: float, gpu: float) -> dict[str, float]:
    return {"CPU": cpu, **({"GPU": gpu} if gpu > 0 else {})}


def check_resources(spec: Spec, console: Console) -> None:
    """Refuse a trial that no node of the connected Ray can ever hold; on a cluster that can
    add nodes, warn instead and go on.

    Raises:
        SpecError: the request cannot be met, naming the `resources` key to change.
    """
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    issue = unmet(Request.of(spec.resources), nodes)
    if issue is None:
        return
    if can_autoscale():
        console.print(
            f"[yellow]warning:[/] {issue.key}: {issue.message}; the cluster can add nodes, so "
            "hpo goes on: its trials wait until a node that holds them has joined.",
            highlight=False,
        )
        return
    raise SpecError(spec.name, [issue])


def unmet(request: Request, nodes: list[Mapping[str, float]]) -> SpecIssue | None:
    """What keeps `request` from ever running on `nodes` (each a node's total resources), or
    None when it fits.

    A one-process trial needs one node that holds all of its request. A DDP trial needs each
    worker to fit some node, and the whole group (with the trial's own process) to fit the
    cluster at once: Ray Train packs the workers onto as few nodes as it can, but spreads
    them where one node cannot hold them all.
    """
    if not request.workers:
        return _no_node_holds(request.trial, nodes, "per trial")
    issue = _no_node_holds(request.worker, nodes, "per worker")
    if issue is not None:
        return issue
    held = _most_workers(request, nodes)
    if held >= request.workers:
        return None
    each = bundle_text(request.worker)
    return SpecIssue(
        "resources.workers",
        f"{request.workers} workers of {each} each, but this Ray can hold {held} at once "
        f"beside the trial's own process (its nodes have {_nodes(nodes)}); lower "
        "resources.workers or what each worker takes, or pass --address of a larger cluster",
    )


def _no_node_holds(
    bundle: Mapping[str, float], nodes: list[Mapping[str, float]], per: str
) -> SpecIssue | None:
    if any(_fits(bundle, node) for node in nodes):
        return None
    for name, amount in bundle.items():
        largest = max((node.get(name, 0.0) for node in nodes), default=0.0)
        if amount > largest + _GRAIN:
            return SpecIssue(
                _KEYS.get(name, "resources"), _short_of(name, amount, largest, nodes, per)
            )
    # Each resource is somewhere, but not together on one node.
    return SpecIssue(
        "resources",
        f"{bundle_text(bundle)} {per}, but no node of this Ray has all of it (its nodes have "
        f"{_nodes(nodes)}); ask for less, or pass --address of a cluster with such a node",
    )


def _short_of(
    name: str, amount: float, largest: float, nodes: list[Mapping[str, float]], per: str
) -> str:
    asked = f"{number_text(amount)} {per}"
    total = sum(node.get(name, 0.0) for node in nodes)
    if total <= 0:
        where = f"this Ray has 0 {RESOURCE_NAMES.get(name, (name, name))[1]}"
    elif len(nodes) == 1:
        where = f"this Ray has {amount_text(name, total)}"
    else:
        where = f"the largest node of this Ray has {amount_text(name, largest)}"
    key = _KEYS.get(name)
    if name == "GPU" and total <= 0:
        fix = f"set {key}: 0 or pass --address of a cluster with GPUs"
    elif key is not None:
        fix = f"set {key} to at most {number_text(largest)} or pass --address of a larger cluster"
    else:
        fix = f"pass --address of a cluster whose nodes have {name}"
    return f"{asked}, but {where}; {fix}"


def _most_workers(request: Request, nodes: list[Mapping[str, float]]) -> int:
    """How many workers the nodes hold at once beside the trial's own process, placed where
    it leaves room for the most (the workers are alike, so each node holds what it can)."""
    best = 0
    for i, node in enumerate(nodes):
        rest = {name: node.get(name, 0.0) - amount for name, amount in request.trial.items()}
        if any(value < -_GRAIN for value in rest.values()):
            continue
        beside = [{**node, **rest}, *nodes[:i], *nodes[i + 1 :]]
        best = max(best, sum(_how_many(request.worker, n) for n in beside))
    return best


def _how_many(bundle: Mapping[str, float], node: Mapping[str, float]) -> int:
    counts = [
        math.floor((node.get(name, 0.0) + _GRAIN) / amount)
        for name, amount in bundle.items()
        if amount > 0
    ]
    return min(counts, default=0)


def _fits(bundle: Mapping[str, float], node: Mapping[str, float]) -> bool:
    return all(node.get(name, 0.0) + _GRAIN >= amount for name, amount in bundle.items())


def can_autoscale() -> bool:
    """Whether Ray's autoscaler runs for this cluster and may add a node.

    Ray 2.60 has no public call for it. Its autoscaler publishes the node groups it may
    launch (each with a min and max count) in the GCS; Ray Data reads them the same way
    (`ray.data._internal.cluster_autoscaler.util.is_autoscaling_enabled`). A local Ray, or
    a cluster started by hand with `ray start`, publishes none.
    """
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception:  # a Ray without it, or no answer: assume a fixed cluster
        return False
    if config is None:
        return False
    return any(
        group.max_count == -1 or group.max_count > group.min_count
        for group in config.node_group_configs
        if group.resources and group.max_count != 0
    )


def _nodes(nodes: list[Mapping[str, float]]) -> str:
    def one(node: Mapping[str, float]) -> str:
        return ", ".join(amount_text(name, node.get(name, 0.0)) for name in RESOURCE_NAMES)

    if len(nodes) == 1:
        return one(nodes[0])
    return "; ".join(one(node) for node in nodes) or "nothing"
