"""The spec: one YAML file, read strictly and validated whole before anything runs.

- `load_spec` reads a file (or a dict) with its `--set` overrides into a frozen `Spec`,
  reporting every problem by file, line and dotted key (`SpecError`);
- `_yaml_source`: safe YAML that remembers each key's line;
- `_ray`: the `ray` section (which cluster).
"""

from hpo.spec._ray import RayOptions, check_address
from hpo.spec._spec import DEFAULT_NUM_SAMPLES, Spec, load_spec
from hpo.types import Mode

__all__ = ["DEFAULT_NUM_SAMPLES", "Mode", "RayOptions", "Spec", "check_address", "load_spec"]
