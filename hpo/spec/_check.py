"""`hpo check` / `hpo.check`: a spec's trainable run through the guide's debugging checks
(`hpo.trainable.checks`) on its base config and a few configs drawn from its space.

Everything runs here, in one process: no Ray, and nothing is written to the store. This
module imports no torch until a check runs, so that `hpo.spec` stays light.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import UsageError
from hpo.spec._spec import Spec, load_spec
from hpo.spec._user_code import TrainableKind

if TYPE_CHECKING:
    from hpo.trainable.checks import CheckReport, CheckResult

DEFAULT_SAMPLES = 2


def check(
    spec: str | Path | Mapping[str, Any] | Spec,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    *,
    sample: int = DEFAULT_SAMPLES,
    progress: Callable[[CheckResult], None] | None = None,
) -> CheckReport:
    """Run the checks on a spec's base config and `sample` configs drawn from its space.

    The configs are drawn at random from the space with the spec's seed (Optuna's random
    sampler: the same draws every time, and no Ray). Each config's Pipeline is built once.

    Args:
        spec: a spec file, a spec as a dict, or a loaded `Spec`.
        overrides: `--set` overrides (`["optimizer.lr=0.1"]` or `{"optimizer.lr": 0.1}`).
        sample: how many configs to draw from the space besides the base config.
        progress: called with each result as it comes (the CLI prints them).

    Returns:
        The results, config by config (`report.ok`, `report.failed`).

    Raises:
        SpecError: the spec is invalid, its code does not import, or its data cannot load.
        UsageError: the spec's trainable is a training function, which the checks cannot
            look inside; or `sample` is negative.
    """
    if sample < 0:
        raise UsageError(f"--sample must be 0 or more, but got {sample}")
    if not isinstance(spec, Spec):
        spec = load_spec(spec, overrides)
    elif overrides:
        spec = load_spec(spec.model_dump(mode="json", exclude_unset=True), overrides)
    if spec.trainable_kind is TrainableKind.FUNCTION:
        raise UsageError(
            f"hpo check runs hpo's Pipeline, but the trainable {spec.trainable!r} is a training "
            "function, whose steps it cannot see; make it a subclass of hpo.Pipeline (see the "
            "README's 'Your own Datasets, transforms, models and Pipeline') to check it"
        )
    from hpo.trainable.checks import CheckReport, run_checks
    from hpo.trainable.pipeline import Pipeline
    from hpo.trainable.preflight import check_user_code, load_data, loads_in_driver

    found = check_user_code(spec)
    pipeline = found if isinstance(found, type) else Pipeline
    subclass = pipeline if pipeline is not Pipeline else None
    dataset = load_data(spec) if loads_in_driver(spec, subclass) else None
    configs = trial_configs(spec, sample)
    results = run_checks(
        pipeline,
        [(label, config) for label, (config, _) in configs.items()],
        dataset,
        largest_batch_size=largest_batch_size(spec),
        # A trial's threads: Ray sets OMP_NUM_THREADS to its CPUs, and small models run
        # faster on one thread than on cores that other processes share.
        threads=max(1, int(spec.resources.cpu)),
        progress=progress,
    )
    return CheckReport(results, {label: params for label, (_, params) in configs.items()})


def trial_configs(spec: Spec, n: int) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """The base config and `n` drawn from the space: label -> (config, searched values).

    Drawn as a trial's config is made: the base config with each searched value set at its
    dotted key.
    """
    from hpo.search import OptunaSearcher, set_path

    base = spec.base_config()
    configs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {"base": (base, {})}
    space = spec.search_space()
    if not n or not len(space):
        return configs
    searcher = OptunaSearcher(name="optuna", sampler="random")
    for i, params in enumerate(searcher.preview(space, seed=spec.seed, n=n), start=1):
        config = copy.deepcopy(base)
        for key, value in params.items():
            set_path(config, key, value)
        configs[f"sample {i}"] = (config, params)
    return configs


def largest_batch_size(spec: Spec) -> int:
    """The largest `training.batch_size` a trial of the spec can have."""
    size = spec.training.batch_size
    dist = spec.space.get("training.batch_size")
    if dist is None:
        return size
    values = [v for v in (dist.points() or dist.extremes()) if isinstance(v, int | float)]
    return int(max(values, default=size))
