import pytest

from hpo.errors import SpecError
from hpo.spec._yaml_source import load_yaml


def test_floats_follow_yaml_1_2():
    data, _ = load_yaml("a: 1e-3\nb: 1E5\nc: -2.5e+2\nd: .5\ne: 10\nf: '1e-3'\n", "f.yaml")
    assert data == {"a": 0.001, "b": 100000.0, "c": -250.0, "d": 0.5, "e": 10, "f": "1e-3"}
    assert isinstance(data["e"], int)


def test_lines_of_nested_keys():
    _, lines = load_yaml("a:\n  b: 1\n  c:\n    - x\n    - y\n", "f.yaml")
    assert lines[("a",)] == 1
    assert lines[("a", "b")] == 2
    assert lines[("a", "c", 1)] == 5


def test_duplicate_keys_are_rejected_with_both_lines():
    with pytest.raises(SpecError) as info:
        load_yaml("a: 1\nb:\n  c: 1\n  c: 2\n", "f.yaml")
    message = str(info.value)
    assert "f.yaml:4: b.c: duplicate key (first defined on line 3)" in message


def test_python_tags_are_rejected():
    with pytest.raises(SpecError, match=r"f.yaml:1: .*no Python tags"):
        load_yaml("a: !!python/object/apply:os.system ['true']\n", "f.yaml")


def test_syntax_error_names_the_line():
    with pytest.raises(SpecError, match=r"f.yaml:3:"):
        load_yaml("a: 1\nb: [1, 2\nc: 3\n", "f.yaml")
