"""A key given no value (``key:`` and the line ends) is reported at its own line.

ruamel.yaml marks such an empty value where the next token starts: the next key, lines below
after blank lines or a comment, or the next section's first line. Every check that reads the
value's place (the schema's, the request checks) pointed there instead of at the key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: nulls
models:
  mini:
    model:
    # the model is not chosen yet

    price: {input_per_mtok: 1, output_per_mtok: 1}
routes:
  - name: default
    to: mini
    description:

defaults: {max_tokens: 100}
"""


def test_validate_places_a_null_value_at_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")

    assert main(["validate", str(policy)]) == 1
    out = capsys.readouterr().out
    assert f"{policy}:5:5 models.mini.model: expected string, got null [PR012]" in out
    assert f"{policy}:12:5 routes[0].description: expected string, got null [PR012]" in out

    assert main(["validate", "--format", "json", str(policy)]) == 1
    found = json.loads(capsys.readouterr().out)["files"][0]["diagnostics"]
    assert {(d["path"], d["line"], d["column"]) for d in found} == {
        ("models.mini.model", 5, 5),
        ("routes[0].description", 12, 5),
    }


def test_explain_places_a_null_request_field_at_its_key(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "req.yaml"
    request.write_text("messages: hi\ntags:\n\n\nmetadata: {task: code}\n", encoding="utf-8")

    assert main(["explain", str(policy_path), "--request", str(request)]) == 1

    err = capsys.readouterr().err
    assert err.startswith(f"policyroute explain: error: {request}:2:1: request field 'tags' must")


def test_a_policy_test_places_a_null_request_field_at_its_key(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = policy_path.with_name("p.tests.yaml")
    tests.write_text(
        "policy: policy.yaml\n"
        "cases:\n"
        "  - name: tags left empty\n"
        "    request:\n"
        "      tags:\n"
        "      # to be filled in\n"
        "      messages: hi\n"
        "    expect: {route: default}\n",
        encoding="utf-8",
    )

    assert main(["test", str(tests)]) == 1

    out = capsys.readouterr().out
    assert "  bad request at line 5: request field 'tags' must be a list of strings" in out
