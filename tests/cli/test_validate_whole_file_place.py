"""``policyroute validate`` (and every message showing a policy's diagnostics) names a problem of
the whole file by the file alone.

A problem with no place in the file (an empty, missing or unreadable file) was printed at
``file:0:0``, a line and column no editor has, where ``explain`` already writes a request
error without a place as ``req.yaml: message``. The text now reads ``file: message [code]``;
the JSON keeps ``"line": 0, "column": 0`` (the whole file, as docs/cli-json.md says), and a
problem with a place keeps its ``file:line:col``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.errors import PolicyValidationError
from policyroute.policy.diagnostics import Diagnostic
from policyroute.policy.loader import load_policy

BROKEN = """\
policyroute: 1
name: x
models: {m: {model: openai/gpt-4o-mini}}
routes: [{name: d, to: [m, sonet]}]
"""


def test_a_whole_file_problem_is_named_by_the_file_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN, encoding="utf-8")

    assert main(["validate", str(empty), str(broken)]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{empty}: the policy is empty (a policy needs at least")
    assert lines[0].endswith("[PR005]")
    assert lines[1].startswith(f"{broken}:4:28 routes[0].to[1]: unknown model or group 'sonet'")
    assert not any(":0:0" in line for line in lines)


def test_the_json_keeps_line_zero_for_the_whole_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")

    assert main(["validate", str(empty), "--format", "json"]) == 1

    (diagnostic,) = json.loads(capsys.readouterr().out)["files"][0]["diagnostics"]
    assert (diagnostic["code"], diagnostic["line"], diagnostic["column"]) == ("PR005", 0, 0)


@pytest.mark.parametrize(
    ("diagnostic", "text"),
    [
        (
            Diagnostic("PR001", "no such file or directory", "", "gone.yaml"),
            "gone.yaml: no such file or directory [PR001]",
        ),
        (
            Diagnostic("PR009", "too big", "models", "p.yaml", hint="split it"),
            "p.yaml: models: too big (split it) [PR009]",
        ),
        (
            Diagnostic("PR104", "unknown model 'sonet'", "routes[2].to", "p.yaml", 14, 7),
            "p.yaml:14:7 routes[2].to: unknown model 'sonet' [PR104]",
        ),
    ],
)
def test_a_diagnostic_without_a_line_is_formatted_without_one(
    diagnostic: Diagnostic, text: str
) -> None:
    assert diagnostic.format() == text


def test_explain_test_and_the_load_error_name_it_by_the_file_alone_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same diagnostic reaches users through the policy's load error, which explain and
    # test print, and which ChatPolicyRoute and completion raise.
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    request = tmp_path / "req.yaml"
    request.write_text("{}", encoding="utf-8")

    assert main(["explain", str(empty), "--request", str(request)]) == 1
    err = capsys.readouterr().err
    assert f"{empty}: the policy is empty" in err
    assert ":0:0" not in err

    with pytest.raises(PolicyValidationError) as caught:
        load_policy(empty)
    assert f"{empty}: the policy is empty" in str(caught.value)
    assert ":0:0" not in str(caught.value)
