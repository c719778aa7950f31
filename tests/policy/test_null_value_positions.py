"""Where the loader places a null: a value written as nothing at its key, a written one
(``~``, ``null``, a tag, an anchor) where it is written."""

from __future__ import annotations

import pytest

from policyroute.policy.load import Position, load_yaml


@pytest.mark.parametrize(
    ("text", "path", "place"),
    [
        ("a:\nb: 1\n", ("a",), (1, 1)),
        ("a:\n\n\nb: 1\n", ("a",), (1, 1)),
        ("a:\n", ("a",), (1, 1)),
        ("x:\n  a:\n\ny: 1\n", ("x", "a"), (2, 3)),
        ("a:   # why\n\nb: 1\n", ("a",), (1, 1)),
        ("a:\n  # why\nb: 1\n", ("a",), (1, 1)),
        ("l:\n  - a:\n    b: 1\n", ("l", 0, "a"), (2, 5)),
        ("? a\n\nb: 1\n", ("a",), (1, 3)),
        ("{a: , b: 1}\n", ("a",), (1, 2)),
    ],
)
def test_a_value_written_as_nothing_is_at_its_key(
    text: str, path: tuple[str | int, ...], place: tuple[int, int]
) -> None:
    doc = load_yaml(text)
    assert doc.diagnostics == []
    assert doc.locate(path) == Position(*place)


@pytest.mark.parametrize(
    ("text", "path", "place"),
    [
        ("a: ~\n\nb: 1\n", ("a",), (1, 4)),
        ("a:\n  null\nb: 1\n", ("a",), (2, 3)),
        ("a: !!null\n\nb: 1\n", ("a",), (1, 4)),
        ("a: &empty\n\nb: *empty\n", ("a",), (1, 4)),
        ("l:\n  -\n\n  - 1\n", ("l", 0), (2, 4)),
    ],
)
def test_a_written_null_is_where_it_is_written(
    text: str, path: tuple[str | int, ...], place: tuple[int, int]
) -> None:
    doc = load_yaml(text)
    assert doc.diagnostics == []
    assert doc.locate(path) == Position(*place)
