"""The results store: schema, migrations, and the one class that reads and writes it."""

from hpo.store.schema import SCHEMA_VERSION, ExperimentStatus, TrialStatus
from hpo.store.store import DEFAULT_STORE, STORE_ENV, Store, now, resolve_url

__all__ = [
    "DEFAULT_STORE",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "ExperimentStatus",
    "Store",
    "TrialStatus",
    "now",
    "resolve_url",
]
