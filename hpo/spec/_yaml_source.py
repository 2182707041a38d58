"""Reading a YAML document strictly, keeping the line of every key.

PyYAML's safe loader is YAML 1.1: it reads `1e-3` as a string and silently keeps the last of
two duplicate keys. Specs are read with YAML 1.2 floats and duplicates rejected, and every
key's line is kept so that validation errors can point at it.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from hpo.errors import SpecError, SpecIssue

Path = tuple[str | int, ...]

# YAML 1.2 core-schema floats: `1e-3` and `1E5` are numbers, as they are in JSON.
_FLOAT_1_2 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats (python object tags stay rejected, as in SafeLoader)."""


# Copy the resolver table so that PyYAML's own SafeLoader is left untouched.
_StrictLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789."))


def load_yaml(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """Parse one YAML document.

    Returns:
        The document as plain Python data, and the 1-based line of every key path in it.

    Raises:
        SpecError: on a syntax error, a duplicate key or a tag that is not plain data.
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[Path, int] = {(): node.start_mark.line + 1}
        issues: list[SpecIssue] = []
        _index(node, (), lines, issues)
        if issues:
            raise SpecError(source, issues)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if isinstance(exc, yaml.constructor.ConstructorError):
            problem += "; a spec holds plain data only (no Python tags)"
        line = mark.line + 1 if mark else None
        raise SpecError(source, [SpecIssue("", problem, line)]) from None
    except yaml.YAMLError as exc:
        raise SpecError(source, [SpecIssue("", str(exc))]) from None
    finally:
        loader.dispose()


def _index(node: yaml.Node, path: Path, lines: dict[Path, int], issues: list[SpecIssue]) -> None:
    """Record the line of every key below `node` and report duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key == "<<":  # merge key: its entries are checked where they are defined
                continue
            if key in first_seen:
                issues.append(
                    SpecIssue(
                        ".".join(map(str, (*path, key))),
                        f"duplicate key (first defined on line {first_seen[key]}); keep one",
                        line,
                    )
                )
                continue
            first_seen[key] = line
            lines[(*path, key)] = line
            _index(value_node, (*path, key), lines, issues)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index(item, (*path, i), lines, issues)
