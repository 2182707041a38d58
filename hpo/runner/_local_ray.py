"""hpo's own local Ray: only the processes a search needs, and trial workers that import the
trainable while the driver still sets up.

`ray.init` of a local Ray starts, beside the GCS and the raylet:

- the dashboard's head process (`dashboard.py`, about 58 MB PSS), even with
  `include_dashboard=False`: it then serves only Ray's usage statistics, and `ray.init` waits
  until it has registered;
- the log monitor (about 45 MB), which streams the workers' output to the driver: hpo runs
  with `log_to_driver=False`, so nothing reads it;
- the autoscaler's monitor (about 47 MB), which a single machine that cannot grow has no use
  for (`hpo.runner._resources.can_autoscale` reads a cluster's autoscaler config, which a
  local Ray never has).

`ray.init` has no option for any of them (Ray 2.60), so `lean_head` tells Ray's `Node` not to
start them, for the one `ray.init` call of a local Ray. Two processes cannot be avoided: the
raylet refuses to start without its dashboard agent and its runtime-env agent ("Dashboard
agent command must be non empty", "Runtime env agent command must be non empty") and exits
when either dies, so they run in every Ray (about 57 + 49 MB).

The trial workers: Ray starts a worker per CPU as soon as the driver connects, and imports
the modules of its `preload_python_modules` setting in each before it waits for work. With
hpo's trainable there, the first trials start in workers that have already imported torch,
Ray Tune and the trainable, while the driver still loads data and builds the Tuner.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# What a trial of hpo's own trainable (or of a user's Pipeline subclass) imports before its
# first epoch: each about 1-3 s in a fresh process on a small machine.
TRAINABLE_MODULES = (
    "torch",
    "ray.tune",
    "hpo.trainable.ray_trainable",
    "hpo.trainable.pipeline",
    "hpo.trainable.checkpoint",
)


def init_local(*, preload: Sequence[str] = (), address: str | None = None) -> None:
    """Start a local Ray, as quiet and as small as a search allows, whose workers import
    `preload` as they start. `address="local"` starts one even where $RAY_ADDRESS names a
    cluster."""
    import ray

    with lean_head():
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            _system_config={"preload_python_modules": list(preload)} if preload else None,
        )


@contextmanager
def lean_head() -> Iterator[None]:
    """While the block runs, a Ray head node started in this process starts no dashboard head,
    no log monitor and no autoscaler monitor (see the module's docstring). Restored on exit.

    Raises:
        RuntimeError: this Ray's `Node` no longer has what this relies on.
    """
    from ray._private import node as ray_node

    node_class = ray_node.Node
    original_init = node_class.__init__
    original_api_server = getattr(node_class, "start_api_server", None)
    if original_api_server is None:
        raise RuntimeError(
            "ray._private.node.Node has no start_api_server: this Ray changed how it starts a "
            "local node; update hpo.runner._local_ray.lean_head for it"
        )

    def init(self: Any, ray_params: Any, *args: Any, head: bool = False, **kwargs: Any) -> None:
        if head:
            ray_params.include_log_monitor = False
            ray_params.no_monitor = True
        original_init(self, ray_params, *args, head=head, **kwargs)

    def no_api_server(self: Any, **_: Any) -> None:
        # What start_api_server leaves behind when the dashboard fails to start: no URL.
        self._webui_url = None

    node_class.__init__ = init
    node_class.start_api_server = no_api_server
    try:
        yield
    finally:
        node_class.__init__ = original_init
        node_class.start_api_server = original_api_server
