"""A policy that fails to load is read and parsed once by each command that loads it: its
diagnostics are printed from that one attempt, never from a second try."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from policyroute.cli import main


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_explain_reads_a_broken_policy_once(
    broken_path: Path, reads: list[str], capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    request = broken_path.parent / "request.yaml"
    request.write_text("messages: hi\n", encoding="utf-8")

    status = main(["explain", str(broken_path), "--request", str(request), "--format", fmt])

    assert status == 1
    assert reads == [os.path.realpath(broken_path)]
    assert capsys.readouterr().err.count("[PR101]") == 1


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_budget_status_reads_a_broken_policy_once(
    broken_path: Path, reads: list[str], capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    assert main(["budget", "status", str(broken_path), "--format", fmt]) == 1
    assert reads == [os.path.realpath(broken_path)]
    assert capsys.readouterr().err.count("[PR101]") == 1


def test_a_tests_file_reads_its_broken_policy_once_for_all_its_cases(
    broken_path: Path, reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    tests = broken_path.parent / "broken.tests.yaml"
    tests.write_text(
        "policy: broken.yaml\n"
        "cases:\n"
        "  - {name: one, request: {messages: hi}, expect: {route: default}}\n"
        "  - {name: two, request: {messages: hi}, expect: {route: default}, env: {A: '1'}}\n"
        "  - {name: three, request: {messages: hi}, expect: {route: code}}\n",
        encoding="utf-8",
    )

    assert main(["test", str(tests)]) == 1

    assert reads == [os.path.realpath(broken_path)]
    out = capsys.readouterr().out
    assert out.count("the policy is invalid") == 1
    assert out.rstrip().endswith("0 passed, 0 failed, 1 file with errors")
