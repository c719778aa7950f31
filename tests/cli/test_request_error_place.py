"""A malformed request read from a file is pointed at by line: ``explain --request`` says
``req.yaml:LINE:COL``, a policy test says ``bad request at line N``, beside the field path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.policytest import run_tests_file
from policyroute.request_place import request_error_path


@pytest.mark.parametrize(
    ("request_text", "place", "message"),
    [
        ("# a request\nmessages: hi\ntags: beta\n", "3:7", "request field 'tags' must be"),
        (
            "messages:\n  - {role: user, content: hi}\n  - role: robot\n    content: hi\n",
            "3:11",
            "request field 'messages[1].role' is 'robot'",
        ),
        (
            "messages:\n  - role: user\n    content:\n      - {type: text, text: 5}\n",
            "4:28",
            "request field 'messages[0].content[0].text' must be a string",
        ),
        ("messages: hi\nmetdata: {task: code}\n", "2:1", "unknown request field(s) 'metdata'"),
        ("messages: hi\nn: 0\n", "2:4", "request parameter 'n' must be a whole number"),
        ("messages: hi\nparams:\n  n: 0\n", "3:6", "request parameter 'n' must be a whole"),
        # an empty key: its message had no place
        ('messages: hi\n"": 1\n', "2:1", "unknown request field(s) ''"),
    ],
)
def test_explain_names_the_line_of_the_field(
    policy_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request_text: str,
    place: str,
    message: str,
) -> None:
    request = tmp_path / "req.yaml"
    request.write_text(request_text, encoding="utf-8")

    assert main(["explain", str(policy_path), "--request", str(request)]) == 1

    err = capsys.readouterr().err
    assert err.startswith(f"policyroute explain: error: {request}:{place}: {message}")


def test_a_policy_test_names_the_line_of_the_field(policy_path: Path) -> None:
    tests = policy_path.with_name("p.tests.yaml")
    tests.write_text(
        "policy: policy.yaml\n"
        "cases:\n"
        "  - name: tags as one word\n"
        "    request:\n"
        "      messages: hi\n"
        "      tags: beta\n"
        "    expect: {route: default}\n"
        "  - name: a misspelt field\n"
        "    request: {messages: hi, metdata: {}}\n"
        "    expect: {route: default}\n",
        encoding="utf-8",
    )

    first, second = run_tests_file(tests).cases

    assert (first.line, second.line) == (3, 8)  # the case, as before
    assert (first.error or "").startswith(
        "bad request at line 6: request field 'tags' must be a list of strings"
    )
    assert (second.error or "").startswith(
        "bad request at line 9: unknown request field(s) 'metdata' (did you mean 'metadata'?)"
    )


def test_a_message_that_names_no_field_has_no_place() -> None:
    assert request_error_path("a request must be a mapping, got list", {}) is None


@pytest.mark.parametrize(
    "request_text",
    ["", "\n\n", "# nothing yet\n", "---\n"],
    ids=["empty", "blank", "comment", "dashes"],
)
def test_an_empty_request_file_is_the_whole_file_s_problem_and_has_no_place(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], request_text: str
) -> None:
    # Said at ":0:0", a line and column no editor has; other request errors read
    # "req.yaml:LINE:COL: ..." or, with no place, "req.yaml: ...".
    request = tmp_path / "req.yaml"
    request.write_text(request_text, encoding="utf-8")

    assert main(["explain", str(policy_path), "--request", str(request)]) == 1

    err = capsys.readouterr().err
    assert err.startswith(f"policyroute explain: error: {request}: the request is empty (")
    assert err.rstrip().endswith("[PR005]")
    assert ":0:0" not in err


def test_an_empty_request_on_stdin_has_no_place_in_json_either(
    policy_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    assert main(["explain", str(policy_path), "--request", "-", "--format", "json"]) == 1

    message = json.loads(capsys.readouterr().out)["error"]["message"]
    assert message.startswith("<stdin>: the request is empty (")
    assert ":0:0" not in message


def test_a_request_that_cannot_be_read_is_placed_as_the_other_request_errors(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "req.yaml"
    request.write_text("messages: hi\nmessages: again\n", encoding="utf-8")

    assert main(["explain", str(policy_path), "--request", str(request)]) == 1

    err = capsys.readouterr().err
    assert err == (
        f"policyroute explain: error: {request}:2:1: messages: duplicate key 'messages'"
        " (first defined at line 1) [PR003]\n"
    )
