"""A policy tests file given to ``validate`` or ``explain`` is said to be one, with the policy it
names: checked as a policy, it was listed as a policy missing 'policyroute', 'name', 'models'
and 'routes', with 'policy' and 'cases' unknown keys, which says nothing of what the file is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

PREFIX = "this is a tests file for 'policyroute test', not a policy"


def test_validate_names_a_tests_file_and_the_policy_it_tests(
    tests_path: Path, policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tests_path)]) == 1

    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{tests_path}:1:1 {PREFIX}: its cases test the policy '{policy_path}'"
        " (run it with 'policyroute test'; give 'validate' or 'explain' the policy it names)"
        " [PR018]",
        "1 error, 0 warnings in 1 file",
    ]
    assert "unknown property" not in out


def test_validate_json_gives_one_diagnostic_at_the_policy_key(
    tests_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = tests_path.with_name("routing-cases.yaml")
    moved.write_text("# cases\n" + tests_path.read_text(encoding="utf-8"), encoding="utf-8")

    assert main(["validate", "--format", "json", str(moved)]) == 1

    (diagnostic,) = json.loads(capsys.readouterr().out)["files"][0]["diagnostics"]
    assert (diagnostic["code"], diagnostic["line"], diagnostic["column"]) == ("PR018", 2, 1)
    # Not named as a tests file, it would be read as a policy in a folder.
    assert diagnostic["hint"].endswith(
        "; name it *.tests.yaml so that a folder's tests files are told from its policies"
    )


def test_validate_a_tests_file_without_a_policy_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = tmp_path / "a.tests.yaml"
    tests.write_text("cases:\n  - name: a\n", encoding="utf-8")

    assert main(["validate", str(tests)]) == 1

    out = capsys.readouterr().out
    assert f"{tests}:1:1 {PREFIX}: it names no policy (add 'policy: " in out


def test_a_policy_with_a_stray_cases_key_is_still_checked_as_a_policy(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_path.write_text(
        policy_path.read_text(encoding="utf-8") + "cases: []\n", encoding="utf-8"
    )

    assert main(["validate", str(policy_path)]) == 1

    out = capsys.readouterr().out
    assert "cases: unknown property 'cases' at the top level [PR010]" in out
    assert "PR018" not in out


def test_explain_given_a_tests_file_as_the_policy_says_what_it_is(
    tests_path: Path, policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "req.yaml"
    request.write_text("messages: hi\n", encoding="utf-8")

    assert main(["explain", str(tests_path), "--request", str(request), "--format", "json"]) == 1

    error = json.loads(capsys.readouterr().out)["error"]
    assert error["type"] == "PolicyValidationError"
    (diagnostic,) = error["diagnostics"]
    assert diagnostic["code"] == "PR018"
    assert diagnostic["message"] == f"{PREFIX}: its cases test the policy '{policy_path}'"
