"""Where a search runs: hpo's own local Ray, or an existing Ray cluster; and where the trials'
checkpoints go, which on a cluster must be a folder (or a cloud URI) every node reaches.

The results store is not here: only the driver writes it, wherever the driver runs.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from hpo.errors import SpecError, SpecIssue, UsageError
from hpo.spec import RayOptions, check_address

ADDRESS_ENV = "RAY_ADDRESS"  # Ray's own variable; `ray.init` reads it too
AUTH_MODE_ENV = "RAY_AUTH_MODE"


@dataclass(frozen=True)
class Placement:
    """Where a search runs, once connected.

    Attributes:
        address: the cluster's address, or None for a local Ray.
        storage_path: Ray Tune's storage path: a local folder or a URI.
        nodes: the cluster's alive nodes when the search started.
        owned: hpo started or connected Ray here, so it disconnects at the end.
    """

    address: str | None
    storage_path: str
    nodes: int
    owned: bool

    @property
    def is_uri(self) -> bool:
        return _is_uri(self.storage_path)

    def release(self) -> None:
        """Disconnect from Ray (or stop the local Ray) if `connect` started it."""
        if self.owned:
            import ray

            ray.shutdown()


def resolve_address(explicit: str | None, spec_ray: RayOptions) -> str | None:
    """The cluster to use: `--address`, then the spec's `ray.address`, then `$RAY_ADDRESS`."""
    address = explicit or spec_ray.address or os.environ.get(ADDRESS_ENV) or None
    if address is not None:
        try:
            check_address(address)
        except ValueError as exc:
            raise UsageError(f"--address: {exc}") from None
    return None if address == "local" else address


def connect(
    spec_name: str,
    spec_ray: RayOptions,
    default_storage: Path,
    *,
    address: str | None = None,
    storage_path: str | None = None,
    console: Console | None = None,
    preload: Sequence[str] = (),
) -> Placement:
    """Start a local Ray, or connect to the cluster the options name, and check that every node
    can reach the storage path, all before any trial starts.

    Where Ray is already initialized (a test session, a notebook), that Ray is used as it is.
    A local Ray that hpo starts runs only the processes a search needs, and its workers import
    the modules `preload` names as they start (`hpo.runner._local_ray`).

    Raises:
        UsageError: the cluster cannot be reached, or wants a token this process lacks.
        SpecError: a multi-node cluster and a storage path that not every node reaches.
    """
    import ray

    address = resolve_address(address, spec_ray)
    explicit_storage = storage_path or spec_ray.storage_path
    owned = not ray.is_initialized()
    if owned:
        _init(address, preload)
    try:
        if address is not None and owned:
            _warn_if_unauthenticated(address, console or Console(stderr=True))
        nodes = [node for node in ray.nodes() if node["Alive"]]
        storage = _storage(explicit_storage, default_storage)
        if len(nodes) > 1:
            _check_shared(spec_name, storage, explicit_storage is not None, nodes)
    except BaseException:
        if owned:
            ray.shutdown()
        raise
    return Placement(address, storage, len(nodes), owned)


def _init(address: str | None, preload: Sequence[str]) -> None:
    import ray

    if address is None:  # hpo's own local Ray, as quiet and as small as the search
        from hpo.runner._local_ray import init_local

        init_local(preload=preload, address="local" if os.environ.get(ADDRESS_ENV) else None)
        return
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except ConnectionError as exc:
        # A cluster that wants a token looks, to a client without one, like no cluster at all.
        hint = (
            ""
            if token_auth_enabled()
            else f" If it uses token authentication, run hpo with {AUTH_MODE_ENV}=token and "
            "the cluster's token in ~/.ray/auth_token or $RAY_AUTH_TOKEN."
        )
        raise UsageError(
            f"cannot connect to the Ray cluster at {address!r}: {exc}. Is it running "
            f"(`ray status --address HOST:PORT` on the head node)?{hint}"
        ) from None
    except Exception as exc:
        if type(exc).__name__ != "AuthenticationError":
            raise
        raise UsageError(
            f"the Ray cluster at {address!r} requires a token: set {AUTH_MODE_ENV}=token and "
            "put the cluster's token (`ray get-auth-token` on the head node) in "
            "~/.ray/auth_token or $RAY_AUTH_TOKEN"
        ) from None


def token_auth_enabled() -> bool:
    """Whether this process talks to Ray with an authentication token."""
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
    except ImportError:  # an older Ray: no token authentication at all
        return False
    return is_token_auth_enabled()


def _cluster_checks_tokens() -> bool:
    """Whether the cluster's own processes run with token authentication.

    A client that sends a token is let into a cluster that checks none as well, so when hpo
    holds a token, a task asks a worker of the cluster (workers share their raylet's mode).
    """
    import ray

    try:
        return bool(ray.get(ray.remote(num_cpus=0)(token_auth_enabled).remote(), timeout=60))
    except (ray.exceptions.RayError, TimeoutError):
        return True  # cannot tell: no warning rather than a wrong one


def _warn_if_unauthenticated(address: str, console: Console) -> None:
    """A cluster that lets clients in without a token lets anyone in who reaches its ports,
    and runs their code: hpo runs on it all the same, but says so."""
    if token_auth_enabled() and _cluster_checks_tokens():
        return
    console.print(
        f"[yellow]warning:[/] the Ray cluster at {address} accepts clients without a token: anyone "
        "who can reach its ports can run code on it. Start it with token authentication "
        f"({AUTH_MODE_ENV}=token ray start ...; `ray get-auth-token --generate` makes a token) "
        f"and run hpo with {AUTH_MODE_ENV}=token.",
        highlight=False,
    )


def _is_uri(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _storage(explicit: str | None, default: Path) -> str:
    if explicit is None:
        return str(default.resolve())
    return explicit if _is_uri(explicit) else str(Path(explicit).expanduser().resolve())


def _check_shared(spec_name: str, storage: str, explicit: bool, nodes: list[dict]) -> None:
    """On several nodes, checkpoints must land where every node reads them: a cloud URI, or
    a folder that a task on each node can see (hpo writes a file there and looks for it)."""
    if _is_uri(storage):
        return
    fix = (
        "give a folder every node mounts (NFS) or a cloud URI: --storage-path /shared/hpo-results "
        "or s3://bucket/hpo-results (or `ray: {storage_path: ...}` in the spec)"
    )
    if not explicit:
        raise SpecError(
            spec_name,
            [
                SpecIssue(
                    "ray.storage_path",
                    f"the cluster has {len(nodes)} nodes, but checkpoints would go to {storage}, "
                    f"on this machine's disk only, where other nodes cannot read them; {fix}",
                )
            ],
        )
    blind = _nodes_not_seeing(storage, nodes)
    if blind:
        raise SpecError(
            spec_name,
            [
                SpecIssue(
                    "ray.storage_path",
                    f"{storage} is not shared: {len(blind)} of the cluster's {len(nodes)} nodes "
                    f"cannot see it ({', '.join(blind)}); {fix}",
                )
            ],
        )


def _nodes_not_seeing(storage: str, nodes: list[dict]) -> list[str]:
    """The nodes on which a file written into `storage` here does not show up."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    folder = Path(storage)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [f"not even this machine: {exc}"]
    marker = folder / f".hpo-shared-{uuid.uuid4().hex}"
    marker.write_text("written by hpo to check that every node sees this folder\n")
    try:
        probe = ray.remote(num_cpus=0, max_retries=0)(_exists)
        seen = ray.get(
            [
                probe.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
                ).remote(str(marker))
                for node in nodes
            ],
            timeout=120,
        )
    except ray.exceptions.RayError as exc:
        # The probe is hpo's own code: a node that cannot run it cannot run a trial either.
        cause = str(exc).strip().splitlines()[-1]
        raise UsageError(
            f"a node of the Ray cluster cannot run hpo's code ({cause}); install hpo, and the "
            "modules your spec names, on every node, in the Python environment Ray runs there"
        ) from None
    finally:
        marker.unlink(missing_ok=True)
    return [
        f"{node['NodeManagerAddress']} (node {node['NodeID'][:8]})"
        for node, ok in zip(nodes, seen, strict=True)
        if not ok
    ]


def _exists(path: str) -> bool:
    return os.path.exists(path)
