"""Which Ray node a trial ran on, as its results say (the store records it per trial)."""

from __future__ import annotations

import socket
from typing import Any

# The key under which hpo's trainables report the node a trial ran on (a string: the store
# records it; analysis and the trackers see only numbers). The hostname alone does not tell
# two Ray nodes on one machine apart, so the Ray node id is part of it.
NODE_KEY = "hpo_node"


def node_label() -> str:
    """The node this process runs on, as the store records it: `hostname/node-id-prefix`."""
    import ray

    node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    return f"{socket.gethostname()}/{node_id[:8]}" if node_id else socket.gethostname()


def node_of(result: dict[str, Any]) -> str | None:
    """The node of a result: what hpo's trainables report, else Ray's hostname."""
    return result.get(NODE_KEY) or result.get("hostname")

