"""A tool schema whose shape litellm's token counter cannot read (a property that is no schema,
an array without ``items``) is named by its field, and pointed at by line, when the input
tokens are counted: ``explain`` said ``cannot count the input tokens ...: 'str' object has no
attribute 'get'`` (or just ``'items'``), with no field and no line."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.cli import main

TOOL = "tools:\n  - type: function\n    function:\n      name: f\n      parameters:\n"


@pytest.mark.parametrize(
    ("schema", "place", "field", "why"),
    [
        (
            "        type: object\n        properties: {a: x}\n",
            "8:25",
            "tools[0].function.parameters.properties.a",
            "must be a JSON schema mapping, got 'x'",
        ),
        (
            "        type: object\n        properties:\n          a: {type: array}\n",
            "9:14",
            "tools[0].function.parameters.properties.a",
            "has type 'array' but no 'items'",
        ),
        (
            "        type: object\n        properties:\n"
            "          a: {type: object, properties: {b: {type: array, items: [x]}}}\n",
            "9:66",
            "tools[0].function.parameters.properties.a.properties.b.items",
            "must be a JSON schema mapping, got ['x']",
        ),
        (
            "        type: object\n        properties:\n          a: {type: string, enum: 5}\n",
            "9:35",
            "tools[0].function.parameters.properties.a.enum",
            "must be a list of values, got 5",
        ),
    ],
    ids=["property", "array-without-items", "nested-items", "enum"],
)
def test_explain_names_the_field_and_its_line(
    policy_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    schema: str,
    place: str,
    field: str,
    why: str,
) -> None:
    request = tmp_path / "req.yaml"
    request.write_text("messages: hi\n" + TOOL + schema, encoding="utf-8")

    assert main(["explain", str(policy_path), "--request", str(request)]) == 1

    err = capsys.readouterr().err
    assert "has no attribute" not in err
    assert f"error: {request}:{place}: cannot count the input tokens of this request for" in err
    assert f": request field '{field}' {why}" in err
