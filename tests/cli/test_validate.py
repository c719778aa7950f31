"""`policyroute validate`: formats, exit codes, colour and folders."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.cli_output import Style, colour_enabled
from policyroute.cli_validate import github_annotation
from policyroute.policy.diagnostics import Diagnostic

LINE = re.compile(
    r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+) (?P<path>\S+): .+ \[(?P<code>PR\d{3})\]$"
)


def test_a_valid_policy_exits_0_with_a_summary(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(policy_path)]) == 0
    out = capsys.readouterr().out
    assert out == "0 errors, 0 warnings in 1 file\n"


def test_text_lists_each_diagnostic_then_the_summary(
    broken_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(broken_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "1 error, 1 warning in 1 file"
    matches = [LINE.match(line) for line in lines[:-1]]
    assert all(matches), lines
    by_code = {m["code"]: m for m in matches if m}
    assert set(by_code) == {"PR101", "PR105"}
    error = by_code["PR101"]
    assert (error["file"], error["line"], error["path"]) == (str(broken_path), "9", "routes[0].to")
    assert "(did you mean 'sonet'?)" in lines[[m["code"] for m in matches if m].index("PR101")]


def test_warnings_pass_unless_strict(
    warning_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(warning_path)]) == 0
    assert "[PR119]" in capsys.readouterr().out
    assert main(["validate", "--strict", str(warning_path)]) == 1
    out = capsys.readouterr().out
    assert "[PR119]" in out
    assert out.endswith("in 1 file\n")


def test_json_holds_every_file_and_diagnostic(
    policy_path: Path, broken_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--format", "json", str(policy_path), str(broken_path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["format_version"] == 1
    assert doc["ok"] is False
    assert doc["summary"] == {"files": 2, "errors": 1, "warnings": 1}
    files = {Path(f["file"]).name: f for f in doc["files"]}
    assert files["policy.yaml"]["ok"] is True
    assert files["policy.yaml"]["diagnostics"] == []
    assert len(files["policy.yaml"]["content_hash"]) == 64
    codes = sorted(d["code"] for d in files["broken.yaml"]["diagnostics"])
    assert codes == ["PR101", "PR105"]
    first = files["broken.yaml"]["diagnostics"][0]
    assert set(first) >= {"code", "message", "path", "file", "line", "column", "severity", "hint"}


def test_github_format_emits_workflow_annotations(
    broken_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--format", "github", str(broken_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    error = next(line for line in lines if line.startswith("::error "))
    assert error == (
        f"::error file={broken_path},line=9,col=9,title=PR101::routes[0].to:"
        " unknown model or group 'sonnet' (did you mean 'sonet'?)"
    )
    assert any(line.startswith("::warning ") and "title=PR105" in line for line in lines)
    assert lines[-1] == "1 error, 1 warning in 1 file"


def test_github_annotation_escapes_what_the_runner_would_misread() -> None:
    d = Diagnostic("PR013", "bad value 50%\nsecond line", "a.b", "dir,x/p:1.yaml", 3, 4)
    assert github_annotation(d) == (
        "::error file=dir%2Cx/p%3A1.yaml,line=3,col=4,title=PR013::"
        "a.b: bad value 50%25%0Asecond line"
    )
    whole_file = Diagnostic("PR001", "cannot read", "", "p.yaml", severity="warning")
    assert github_annotation(whole_file) == "::warning file=p.yaml,title=PR001::cannot read"


def test_a_folder_is_searched_and_tests_files_are_skipped(
    policy_path: Path, tests_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(policy_path.parent)]) == 0
    assert capsys.readouterr().out == "0 errors, 0 warnings in 1 file\n"


def test_the_example_policies_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    policies = Path(__file__).resolve().parents[2] / "policies"
    assert main(["validate", "--format", "json", str(policies)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["files"] == 5
    assert doc["summary"]["errors"] == 0
    # the only diagnostics are unset ${API_KEY} variables, as on any machine without keys
    assert {d["code"] for f in doc["files"] for d in f["diagnostics"]} <= {"PR119"}


@pytest.mark.parametrize(
    "argv",
    [
        ["validate"],
        ["validate", "--format", "xml", "p.yaml"],
        ["validate", "does-not-exist.yaml"],
        [],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_an_empty_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    assert "no policy files found" in capsys.readouterr().err


def test_colour_on_a_terminal_only_and_never_with_no_color(
    broken_path: Path,
    tty_stdout: Callable[[], io.StringIO],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tty_stdout()
    assert main(["validate", str(broken_path)]) == 1
    assert "\x1b[31m" in out.getvalue()

    monkeypatch.setenv("NO_COLOR", "1")
    out = tty_stdout()
    assert main(["validate", str(broken_path)]) == 1
    assert "\x1b[" not in out.getvalue()
    assert "[PR101]" in out.getvalue()


def test_colour_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_enabled(Tty()) is True
    assert colour_enabled(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "")  # an empty NO_COLOR does not count (no-color.org)
    assert colour_enabled(Tty()) is True
    monkeypatch.setenv("NO_COLOR", "yes")
    assert colour_enabled(Tty()) is False
    assert Style(enabled=False).red("x") == "x"
    assert Style(enabled=True).red("x") == "\x1b[31mx\x1b[0m"
