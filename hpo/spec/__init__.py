"""The spec: one YAML file, read strictly and validated whole before anything runs.

- `load_spec` reads a file (or a dict) with its `--set` overrides into a frozen `Spec`,
  reporting every problem by file, line and dotted key (`SpecError`);
- `_yaml_source`: safe YAML that remembers each key's line;
- `_ray`: the `ray` section (which cluster);
- `_user_code`: the code a spec names by import path, imported (never called) at validation,
  and what its `trainable` is (`TrainableKind`: hpo's own, a Pipeline subclass, a function);
- `_stored`: `check_stored`, what the spec names in the results store (`warm_start.from`);
- `_check`: `check`, the spec's trainable run through the debugging checks (`hpo check`).
"""

from hpo.spec._check import check
from hpo.spec._ray import RayOptions, check_address
from hpo.spec._spec import DEFAULT_NUM_SAMPLES, Spec, load_spec
from hpo.spec._stored import check_stored, gather
from hpo.spec._user_code import TrainableKind
from hpo.types import Mode

__all__ = [
    "DEFAULT_NUM_SAMPLES",
    "Mode",
    "RayOptions",
    "Spec",
    "TrainableKind",
    "check",
    "check_address",
    "check_stored",
    "gather",
    "load_spec",
]
