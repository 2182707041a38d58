"""The spec's `ray` section: which Ray cluster a search runs on, checked before Ray starts."""

from __future__ import annotations

from pydantic import Field, field_validator

from hpo._options import Options


class RayOptions(Options):
    """The Ray cluster a search runs on (`hpo run --address`, `--storage-path` override these)."""

    address: str | None = Field(
        None,
        description="an existing cluster: 'auto', 'HOST:PORT' (default: $RAY_ADDRESS, else a "
        "local Ray that hpo starts and stops)",
    )
    storage_path: str | None = Field(
        None,
        description="where trials write checkpoints: a folder every node reaches (NFS) or a "
        "cloud URI (s3://, gs://); default: hpo-results/ here, which only a one-node Ray can use",
    )

    @field_validator("address")
    @classmethod
    def _known_form(cls, address: str | None) -> str | None:
        if address is not None:
            check_address(address)
        return address


def check_address(address: str) -> str:
    """Raise ValueError unless `address` is one of the forms hpo can run on."""
    if address in ("auto", "local"):
        return address
    if address.startswith("ray://"):
        # Ray Client runs Ray Tune's driver, with hpo's store callback and progress view, as
        # an actor on the head node: the store would be written there, not where hpo runs.
        raise ValueError(
            f"{address!r}: Ray Client (ray://) runs the search's driver on the head node, where "
            "hpo's results store cannot follow; run hpo on a node of the cluster with "
            "--address auto, or submit it there: ray job submit --address http://HEAD:8265 "
            "--working-dir . -- hpo run SPEC --address auto"
        )
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(
            f"{address!r} is not a Ray address; use 'auto' (a cluster started on this machine "
            "with `ray start`) or HOST:PORT of the head node (port 6379 by default)"
        )
    return address

