"""The checks of a spec's `objectives` and `constraints` against the rest of it: that the
trainable reports them, that the searcher can serve several objectives, and which one a
pruning scheduler judges."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.pareto import parse_constraint
from hpo.search import AshaScheduler

if TYPE_CHECKING:
    from hpo.spec._spec import Spec
    from hpo.spec._yaml_source import Path as KeyPath


def objective_problems(spec: Spec, reported: list[str] | None) -> list[tuple[KeyPath, str]]:
    """The problems of the objectives and constraints, each at the key to change.

    Args:
        reported: what the trainable reports (hpo's or the user's Pipeline), None for a
            user's function, whose metrics only it knows.
    """
    issues: list[tuple[KeyPath, str]] = []
    names = list(spec.objectives)
    choose = f"; choose among: {', '.join(reported)}" if reported else ""
    if reported is not None:
        issues += [
            (("objectives", name), f"the trainable does not report {name!r}{choose}")
            for name in names
            if name not in reported
        ]
        for i, text in enumerate(spec.constraints):
            metric = parse_constraint(text).metric
            if metric not in reported:
                issues.append(
                    (
                        ("constraints", i),
                        f"{text!r} names {metric!r}, which the trainable does not report{choose}",
                    )
                )
    if len(names) > 1:
        problem = spec.searcher.several_objectives_problem()
        if problem:
            issues.append((("searcher",), f"{len(names)} objectives, but {problem}"))
    scheduler_metric = getattr(spec.scheduler, "metric", None)
    if scheduler_metric is not None:
        if not names:
            issues.append(
                (
                    ("scheduler", "metric"),
                    "names the objective the scheduler judges when there are several "
                    "`objectives`; with one `metric`, remove it",
                )
            )
        elif scheduler_metric not in names:
            issues.append(
                (
                    ("scheduler", "metric"),
                    f"{scheduler_metric!r} is not an objective; choose one of: {', '.join(names)}",
                )
            )
    if names and spec.metric not in names:
        issues.append(
            (
                ("metric",),
                f"with `objectives`, the metric is the objective that a pruning scheduler, early "
                f"stopping and checkpoints judge, and {spec.metric!r} is none of them; remove "
                "`metric` (set scheduler.metric to choose another than the first)",
            )
        )
    elif scheduler_metric is not None and spec.metric != scheduler_metric:
        issues.append(
            (
                ("metric",),
                f"the scheduler judges {scheduler_metric!r} (scheduler.metric), but metric is "
                f"{spec.metric!r}; remove `metric`, which follows scheduler.metric",
            )
        )
    return issues


def objective_doubts(spec: Spec) -> list[tuple[KeyPath, str]]:
    """What a user of several objectives should know: a pruning scheduler judges one."""
    if spec.is_multi_objective and isinstance(spec.scheduler, AshaScheduler):
        others = [name for name in spec.objectives if name != spec.metric]
        return [
            (
                ("scheduler",),
                f"ASHA stops trials by {spec.metric} ({spec.mode}) alone, not by "
                f"{', '.join(others)}; set scheduler.metric to judge by another objective",
            )
        ]
    return []
