"""``--format json`` prints a JSON document on every failure; Ctrl-C is status 130 anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import policyroute.cli
from policyroute.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "NOPE", "--request", "REQ"], "no such policy file: NOPE"),
        (["explain", "POLICY", "--request", "NOPE"], "no such request file: NOPE"),
        (["explain", "DIR", "--request", "REQ"], "the policy must be a file; DIR is a directory"),
        (["validate", "DIR"], "no policy files found in DIR"),
    ],
)
def test_a_usage_error_with_format_json_is_a_json_document(
    policy_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    request = tmp_path / "request.yaml"
    request.write_text("messages: hi\n", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    names = {
        "NOPE": str(tmp_path / "nope.yaml"),
        "REQ": str(request),
        "POLICY": str(policy_path),
        "DIR": str(empty),
    }

    status = main([names.get(a, a) for a in argv] + ["--format", "json"])

    captured = capsys.readouterr()
    expected = message
    for key, value in names.items():
        expected = expected.replace(key, value)
    assert status == 2
    assert json.loads(captured.out) == {"error": {"type": "UsageError", "message": expected}}
    assert f"error: {expected}" in captured.err  # stderr says it as in text mode


def test_an_unreadable_request_with_format_json_is_a_json_document(
    policy_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Permission bits do not stop root, so the read itself is made to fail.
    request = tmp_path / "request.yaml"
    request.write_text("messages: hi\n", encoding="utf-8")
    real_open = Path.open

    def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == request:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)

    status = main(["explain", str(policy_path), "--request", str(request), "--format", "json"])

    captured = capsys.readouterr()
    assert status == 1
    error = json.loads(captured.out)["error"]
    assert error["type"] == "PermissionError"
    assert str(request) in error["message"]
    assert "Permission denied" in captured.err


def test_ctrl_c_before_the_command_runs_is_130_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    # Building the parser is where a Ctrl-C right after start lands.
    monkeypatch.setattr(policyroute.cli, "build_parser", interrupted)

    assert main(["validate", "p.yaml"]) == 130
    assert capsys.readouterr().err == ""
