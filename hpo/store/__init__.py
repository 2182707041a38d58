"""The results store: schema, migrations, and the one class that reads and writes it."""

from hpo.store._schema import SCHEMA_VERSION
from hpo.store._store import DEFAULT_STORE, STORE_ENV, Outcome, Store, now, resolve_url
from hpo.types import ExperimentStatus, TrialStatus

__all__ = [
    "DEFAULT_STORE",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "ExperimentStatus",
    "Outcome",
    "Store",
    "TrialStatus",
    "now",
    "resolve_url",
]
