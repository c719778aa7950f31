"""Policy tests that name what the policy does not have say so, instead of showing a diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.policytest import run_tests_file


def _tests_file(policy_path: Path, expect: str) -> Path:
    path = policy_path.parent / "names.tests.yaml"
    path.write_text(
        f"policy: {policy_path.name}\n"
        "cases:\n"
        "  - name: the case\n"
        "    request: {messages: hi, metadata: {task: code}}\n"
        f"    expect: {expect}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("expect", "error"),
    [
        (
            "{route: cod}",
            "'expect.route' names no route of the policy: 'cod' (did you mean 'code'?)",
        ),
        (
            "{route: code, model: gpt}",
            "'expect.model' names no model of the policy: 'gpt' (it has mini, sonnet, local)",
        ),
        (
            "{candidates: [sonnet, mni]}",
            "'expect.candidates' names no model of the policy: 'mni' (did you mean 'mini'?)",
        ),
        (
            "{budgets: [per-user-dialy]}",
            "'expect.budgets' names no budget of the policy: 'per-user-dialy'"
            " (did you mean 'per-user-daily'?)",
        ),
    ],
)
def test_a_name_the_policy_lacks_is_a_case_error(
    policy_path: Path, expect: str, error: str
) -> None:
    (case,) = run_tests_file(_tests_file(policy_path, expect)).cases

    assert case.error == error
    assert not case.passed


def test_a_policy_without_budgets_says_it_has_none(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "policyroute: 1\nname: p\nmodels: {mini: {model: openai/gpt-4o-mini}}\n"
        "routes: [{name: default, to: mini}]\n",
        encoding="utf-8",
    )

    (case,) = run_tests_file(_tests_file(policy, "{budgets: [daily]}")).cases

    assert case.error == (
        "'expect.budgets' names no budget of the policy: 'daily' (it has no budgets)"
    )


def test_known_names_still_compare_as_before(policy_path: Path) -> None:
    (case,) = run_tests_file(_tests_file(policy_path, "{route: default, model: mini}")).cases

    assert case.error is None
    assert case.actual == {"route": "code", "model": "sonnet"}  # a real difference: a diff


def test_an_invalid_policy_is_one_block_with_its_diagnostics(
    broken_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = _tests_file(broken_path, "{route: code}")

    assert main(["test", str(tests)]) == 1

    out = capsys.readouterr().out
    assert (
        f"\n\n{broken_path}: the policy is invalid\n"
        f"{broken_path}:9:9 routes[0].to: unknown model or group 'sonnet'"
    ) in out
