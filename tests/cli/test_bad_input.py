"""Bad input through the CLI entry point: a typed error that says what and where, never a
traceback, never a silent success, and the documented exit status (see policyroute/cli.py)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policyroute.cli import main

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "policyroute"
NOT_UTF8 = b"\xff\xfe\x00binary\x00"


def _shell(command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in sh with ``$PR`` set to the installed script, as a CI job would."""
    env = {**os.environ, "NO_COLOR": "1", "PR": str(SCRIPT)}
    return subprocess.run(
        ["sh", "-c", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------------------- explain


def test_explain_a_request_file_that_is_not_utf8(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "req.json"
    request.write_bytes(NOT_UTF8)
    assert main(["explain", str(policy_path), "--request", str(request)]) == 1
    assert f"{request}: the request is not UTF-8 text (byte 0)" in _err(capsys)


def test_explain_a_request_on_stdin_that_is_not_utf8(
    policy_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(NOT_UTF8)))
    assert main(["explain", str(policy_path), "--request", "-"]) == 1
    assert "<stdin>: the request is not UTF-8 text (byte 0)" in _err(capsys)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the request is empty"),
        ("[1, 2]\n", "1:1 the request must be a mapping of keys to values, not a list"),
        ("42\n", "1:1 the request must be a mapping of keys to values, not a single value"),
    ],
)
def test_explain_a_request_that_is_not_a_mapping_is_not_called_a_policy(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    request = tmp_path / "req.json"
    request.write_text(text, encoding="utf-8")
    assert main(["explain", str(policy_path), "--request", str(request)]) == 1
    err = _err(capsys)
    assert message in err
    assert "the policy" not in err


def test_explain_a_malformed_request_field_names_the_file_and_path(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "req.json"
    request.write_text('{"messages": 42}', encoding="utf-8")
    assert main(["explain", str(policy_path), "--request", str(request)]) == 1
    assert f"{request}: request field 'messages' must be a list" in _err(capsys)


# --------------------------------------------------------------------------- test


def _tests_file(policy_path: Path, body: str | bytes) -> Path:
    path = policy_path.parent / "bad.tests.yaml"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, encoding="utf-8")
    return path


def test_a_tests_file_that_is_not_utf8(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = _tests_file(policy_path, NOT_UTF8)
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert f"{tests}: the tests file is not UTF-8 text (byte 0)" in out
    assert "1 file with errors" in out


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "the tests file is empty"),
        ("- a\n", "1:1 the tests file must be a mapping of keys to values, not a list"),
    ],
)
def test_a_tests_file_that_is_not_a_mapping_is_not_called_a_policy(
    policy_path: Path, capsys: pytest.CaptureFixture[str], body: str, message: str
) -> None:
    tests = _tests_file(policy_path, body)
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert message in out
    assert "the policy" not in out


def test_an_unknown_expected_error_is_a_malformed_case_not_a_diff(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = _tests_file(
        policy_path,
        "policy: policy.yaml\ncases:\n  - name: typo\n    request: {messages: hi}\n"
        "    expect: {error: NoCandidateErorr}\n",
    )
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert f"{tests}:3 typo" in out
    assert "unknown 'expect.error' 'NoCandidateErorr'" in out
    assert "--- expected" not in out


# --------------------------------------------------------------------------- every command


def test_errors_name_the_whole_sub_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    assert main(["receipts", "report", str(folder)]) == 1
    assert "policyroute receipts report: error:" in _err(capsys)


def test_a_closed_stdout_is_an_error_not_a_traceback() -> None:
    done = _shell('"$PR" schema >&-')
    assert done.returncode == 1
    assert done.stderr == "policyroute schema: error: standard output is closed\n"
