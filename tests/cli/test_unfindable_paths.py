"""A path no file system can hold (a name longer than 255 bytes) is a path that does not
exist, said in its place: looking it up raised ``OSError: File name too long``, which stopped
``policyroute test`` and ``policyroute validate`` before the other files were checked, and
exited 1 (``receipts report`` too) with the bare errno message where a path that does not exist
is a usage error (2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.policy.validate import validate_paths

TOO_LONG = "a" * 300


def test_a_tests_file_path_too_long_is_missing_and_the_others_run(
    tests_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tests_path.with_name(f"{TOO_LONG}.tests.yaml")

    assert main(["test", str(missing), str(tests_path)]) == 2

    out, err = capsys.readouterr()
    assert f"{missing}: no such file or directory" in out
    assert f"ok    {tests_path} (3 cases)" in out
    assert f"policyroute test: error: no such file or directory: {missing}" in err


def test_a_policy_path_too_long_fails_its_tests_file_alone(
    tests_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tests_path.with_name("long.tests.yaml")
    broken.write_text(
        f"policy: {TOO_LONG}.yaml\ncases: [{{name: a, request: {{}}, expect: {{route: x}}}}]\n",
        encoding="utf-8",
    )

    assert main(["test", str(broken), str(tests_path)]) == 1

    out = capsys.readouterr().out
    assert f"{broken}:1: policy file not found: {broken.parent / TOO_LONG}.yaml" in out
    assert out.rstrip().endswith("3 passed, 0 failed, 1 file with errors")


@pytest.mark.parametrize("which", ["policy", "request"])
def test_explain_given_a_path_too_long_is_a_usage_error(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    request = tmp_path / "req.yaml"
    request.write_text("messages: hi\n", encoding="utf-8")
    long = str(tmp_path / f"{TOO_LONG}.yaml")
    policy, request_file = (long, str(request)) if which == "policy" else (str(policy_path), long)

    assert main(["explain", policy, "--request", request_file, "--format", "json"]) == 2

    out, err = capsys.readouterr()
    assert f"policyroute explain: error: no such {which} file: {long}" in err
    assert '"type": "UsageError"' in out


@pytest.mark.parametrize("where", ["name", "folder"])
def test_validate_given_a_path_too_long_reports_it_missing_and_checks_the_others(
    policy_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    # A name too long, or a path through a folder whose name is.
    long = policy_path.with_name(f"{TOO_LONG}.yaml")
    if where == "folder":
        long = policy_path.parent / TOO_LONG / "policy.yaml"

    assert main(["validate", str(long), str(policy_path)]) == 2

    out, err = capsys.readouterr()
    assert f"{long}: no such file or directory [PR001]" in out
    assert "1 error, 0 warnings in 2 files" in out
    assert err == f"policyroute validate: error: no such file or directory: {long}\n"


def test_validate_json_given_a_path_too_long_lists_it_in_its_place(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = str(policy_path.with_name(f"{TOO_LONG}.yaml"))

    assert main(["validate", "--format", "json", str(policy_path), long]) == 2

    doc = json.loads(capsys.readouterr().out)
    assert [(f["file"], f["ok"]) for f in doc["files"]] == [(str(policy_path), True), (long, False)]
    assert doc["files"][1]["diagnostics"][0]["message"] == "no such file or directory"


def test_validate_paths_given_a_path_too_long_reports_it_unreadable() -> None:
    (result,) = validate_paths([TOO_LONG])

    assert result.diagnostics[0].code == "PR001"
    assert "File name too long" in result.diagnostics[0].message


def test_receipts_report_given_a_path_too_long_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = str(tmp_path / f"{TOO_LONG}.jsonl")

    assert main(["receipts", "report", long]) == 2

    err = capsys.readouterr().err
    assert f"policyroute receipts report: error: no such file or directory: {long}\n" in err
