"""`policyroute test` and the policy test runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.policytest import CaseResult, find_tests_files, run_tests_file

REPO = Path(__file__).resolve().parents[2]

FAILING_TESTS = """\
policy: policy.yaml
cases:
  - name: passes
    request: {messages: "hi"}
    expect: {route: default}
  - name: code goes to mini (wrong on purpose)
    request: {metadata: {task: code}, messages: "write a function"}
    expect: {route: code, model: mini, params: {temperature: 0}}
"""


def _write(dir_: Path, name: str, text: str) -> Path:
    path = dir_ / name
    path.write_text(text, encoding="utf-8")
    return path


def test_passing_tests_exit_0(tests_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(tests_path)]) == 0
    out = capsys.readouterr().out
    assert f"ok    {tests_path} (3 cases)" in out
    assert out.rstrip().endswith("3 passed, 0 failed")


def test_a_failure_is_shown_as_a_diff_with_its_location(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = _write(policy_path.parent, "bad.tests.yaml", FAILING_TESTS)
    assert main(["test", str(tests)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED {tests}:6 code goes to mini (wrong on purpose)" in out
    diff = [line.strip() for line in out.splitlines()]
    assert "--- expected" in diff
    assert "+++ actual" in diff
    assert "-model: mini" in diff
    assert "+model: sonnet" in diff
    assert "route: code" in diff  # unchanged lines are shown as context
    assert out.rstrip().endswith("1 passed, 1 failed")


def test_case_result_diff_is_empty_when_equal() -> None:
    same = CaseResult("f", 1, "n", {"route": "a"}, {"route": "a"})
    assert same.passed
    assert same.diff() == ""
    other = CaseResult(
        "f", 1, "n", {"route": "a", "candidates": ["x"]}, {"route": "a", "candidates": ["y"]}
    )
    assert not other.passed
    assert other.diff().splitlines()[-2:] == ["-- x", "+- y"]


def test_env_is_set_for_the_case_only(policy_path: Path) -> None:
    policy_path.write_text(
        policy_path.read_text().replace(
            "mini: {model: openai/gpt-4o-mini}",
            'mini: {model: openai/gpt-4o-mini, api_key: "${POLICYROUTE_TEST_CASE_KEY}"}',
        )
    )
    tests = _write(
        policy_path.parent,
        "env.tests.yaml",
        "policy: policy.yaml\n"
        "cases:\n"
        "  - name: with a key\n"
        "    env: {POLICYROUTE_TEST_CASE_KEY: sk-test}\n"
        "    request: {messages: hi}\n"
        "    expect: {route: default, model: local}\n",
    )
    os.environ.pop("POLICYROUTE_TEST_CASE_KEY", None)
    result = run_tests_file(tests)
    assert result.ok, result
    assert "POLICYROUTE_TEST_CASE_KEY" not in os.environ


def test_malformed_cases_fail_with_a_reason(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = _write(
        policy_path.parent,
        "odd.tests.yaml",
        "policy: policy.yaml\n"
        "cases:\n"
        "  - name: typo in expect\n"
        "    request: {messages: hi}\n"
        "    expect: {rout: default}\n"
        "  - name: bad request\n"
        "    request: {messages: 42}\n"
        "    expect: {route: default}\n",
    )
    result = run_tests_file(tests)
    assert [c.passed for c in result.cases] == [False, False]
    assert "unknown expect key(s) rout" in (result.cases[0].error or "")
    assert "bad request" in (result.cases[1].error or "")
    assert result.cases[1].line == 6
    assert main(["test", str(tests)]) == 1
    assert "0 passed, 2 failed" in capsys.readouterr().out


def test_file_level_problems_are_reported(
    policy_path: Path, broken_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = _write(
        policy_path.parent,
        "missing.tests.yaml",
        "policy: nowhere.yaml\ncases: [{name: x, request: {}, expect: {route: x}}]\n",
    )
    invalid = _write(
        policy_path.parent,
        "invalid.tests.yaml",
        "policy: broken.yaml\ncases: [{name: x, request: {}, expect: {route: x}}]\n",
    )
    assert "policy file not found" in run_tests_file(missing).problems[0]
    problems = run_tests_file(invalid).problems
    assert any("[PR101]" in p for p in problems)
    assert main(["test", str(missing), str(invalid)]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out
    assert out.rstrip().endswith("0 passed, 0 failed, 2 files with errors")


def test_folders_are_searched_skipping_hidden_ones(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / ".venv").mkdir()
    for name in ("a/x.tests.yaml", "a/y_tests.yml", ".venv/z.tests.yaml", "a/policy.yaml"):
        (tmp_path / name).write_text("")
    found = find_tests_files([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a/x.tests.yaml",
        "a/y_tests.yml",
    ]


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test"]) == 2
    assert main(["test", str(tmp_path / "nope.tests.yaml")]) == 2
    assert main(["test", str(tmp_path)]) == 2  # a folder without tests files
    assert "no *.tests.yaml files" in capsys.readouterr().err


def test_the_example_policies_pass_their_tests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(REPO / "policies")]) == 0
    out = capsys.readouterr().out
    assert out.count("ok    ") == 5
    passed = int(out.rstrip().splitlines()[-1].split()[0])
    assert passed >= 30


@pytest.mark.parametrize(
    "name", ["provider-matrix", "cost-latency", "tiered", "prefix-failover", "strategies-budgets"]
)
def test_each_example_policy_has_cases_for_every_route(name: str) -> None:
    from policyroute.policy.load import load_yaml
    from policyroute.policy.loader import load_policy

    policy_file = REPO / "policies" / f"{name}.yaml"
    assert policy_file.read_text().startswith(
        "# yaml-language-server: $schema=../schemas/policy.schema.json\n"
    )
    tests = load_yaml((REPO / "policies" / f"{name}.tests.yaml").read_text()).data
    assert tests["policy"] == f"{name}.yaml"
    assert len(tests["cases"]) >= 6
    covered = {case["expect"].get("route") for case in tests["cases"]}
    assert set(load_policy(policy_file).route_names) <= covered
