"""With ``--format json``, a command that fails still prints a JSON document on stdout.

A program reading the output (``policyroute explain ... --format json | jq``) gets
``{"error": {...}}`` and the exit status 1, instead of nothing; the message also goes to
stderr as in text mode.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main


@pytest.fixture
def broken(tmp_path: Path) -> tuple[Path, Path]:
    """An invalid policy and a valid request to explain with it."""
    policy = tmp_path / "broken.yaml"
    policy.write_text("policyroute: 1\nname: broken\nroutes: []\nmodels: {}\n")
    request = tmp_path / "request.yaml"
    request.write_text("messages: hi\n")
    return policy, request


def test_explain_json_on_an_invalid_policy_prints_the_diagnostics(
    broken: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, request = broken

    status = main(["explain", str(policy), "--request", str(request), "--format", "json"])

    captured = capsys.readouterr()
    assert status == 1
    error = json.loads(captured.out)["error"]
    assert error["type"] == "PolicyValidationError"
    assert error["diagnostics"]
    assert all(d["file"] == str(policy) for d in error["diagnostics"])
    assert {d["severity"] for d in error["diagnostics"]} >= {"error"}
    assert captured.err  # the text diagnostics, as without --format json


def test_explain_json_on_a_bad_request_names_it(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "request.yaml"
    request.write_text("messages: [{role: user, content: hi}]\nmax_tokens: -5\n")

    status = main(["explain", str(policy_path), "--request", str(request), "--format", "json"])

    captured = capsys.readouterr()
    assert status == 1
    error = json.loads(captured.out)["error"]
    assert error["type"] == "RequestError"
    assert "max_tokens" in error["message"]
    assert "diagnostics" not in error


def test_text_format_prints_nothing_on_stdout(
    broken: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, request = broken
    assert main(["explain", str(policy), "--request", str(request)]) == 1
    assert capsys.readouterr().out == ""
