"""Reading YAML: positions for every node, and bad input as diagnostics, never a traceback."""

from __future__ import annotations

from pathlib import Path

from policyroute.policy.load import Position, format_path, load_yaml
from policyroute.policy.validate import validate_file, validate_text


def test_positions_of_keys_values_and_items() -> None:
    doc = load_yaml("a:\n  b: [x, {c: 1}]\n  d: 2\n")
    assert doc.locate(("a",), key=True) == Position(1, 1)
    assert doc.locate(("a", "b")) == Position(2, 6)
    assert doc.locate(("a", "b", 0)) == Position(2, 7)
    assert doc.locate(("a", "b", 1, "c")) == Position(2, 14)
    assert doc.locate(("a", "b", 1, "c"), key=True) == Position(2, 11)
    assert doc.locate(("a", "d"), key=True) == Position(3, 3)
    # Unknown paths fall back to the nearest known ancestor.
    assert doc.locate(("a", "b", 1, "zz", 3)) == Position(2, 10)


def test_format_path_quotes_keys_that_are_not_identifiers() -> None:
    assert format_path(()) == ""
    assert format_path(("routes", 2, "when", "metadata.task")) == 'routes[2].when["metadata.task"]'
    assert format_path(("models", "gpt-4.1", "model")) == 'models["gpt-4.1"].model'


def test_yaml_12_scalars_and_no_object_construction() -> None:
    doc = load_yaml("a: yes\nb: 0x1F\nc: 1_000\nd: 2024-01-01\ne: ~\nf: 1.50\ng: !!str 12\n")
    assert doc.data == {
        "a": "yes", "b": 31, "c": 1000, "d": "2024-01-01", "e": None, "f": 1.5, "g": "12",
    }  # fmt: skip
    assert doc.raw_scalars[("f",)] == "1.50"
    assert doc.diagnostics == []


def test_aliases_are_allowed_and_billion_laughs_is_refused() -> None:
    doc = load_yaml("a: &x {k: 1}\nb: *x\n")
    assert doc.data == {"a": {"k": 1}, "b": {"k": 1}}
    assert doc.diagnostics == []
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    doc = load_yaml("\n".join(lines) + "\n")
    assert [d.code for d in doc.diagnostics] == ["PR009"]
    assert doc.data is None


def test_scalar_keys_become_strings_and_bom_is_ignored() -> None:
    doc = load_yaml("\ufeff1: a\ntrue: b\n")
    assert doc.data == {"1": "a", "true": "b"}


def test_whole_file_problems(tmp_path: Path) -> None:
    assert validate_file(tmp_path / "nope.yaml").diagnostics[0].code == "PR001"
    assert validate_file(tmp_path).diagnostics[0].code == "PR001"
    for text, code in [("", "PR005"), ("---\n", "PR005"), ("42\n", "PR006"), ("[1]\n", "PR006")]:
        assert [d.code for d in validate_text(text).diagnostics] == [code]


def test_deep_nesting_is_a_diagnostic() -> None:
    result = validate_text("a: " + "[" * 1500 + "]" * 1500 + "\n")
    assert [d.code for d in result.diagnostics] == ["PR009"]
