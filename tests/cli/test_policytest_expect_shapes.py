"""A tests file whose expectation has the wrong shape is told so, not run as a case that can
only ever fail with a confusing diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.policytest import run_tests_file

POLICY = """policyroute: 1
name: demo
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - name: default
    to: mini
"""


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("{route: [default]}", "'expect.route' must be a route name, got a list"),
        ("{route: 5}", "'expect.route' must be a route name, got a number"),
        ("{model: null}", "'expect.model' must be a model name, got null"),
        ("{model: {a: 1}}", "'expect.model' must be a model name, got a mapping"),
        ("{candidates: [mini, [x]]}", "'expect.candidates' must be a list of model aliases"),
        ("{budgets: [1]}", "'expect.budgets' must be a list of budget names"),
        # a list or mapping was looked up among the error names: an internal error, exit 70
        ("{error: [NoCandidateError]}", "'expect.error' must be an error class name, got a list"),
        (
            "{error: {type: RoutingError}}",
            "'expect.error' must be an error class name, got a mapping",
        ),
        ("{error: null}", "'expect.error' must be an error class name, got null"),
    ],
)
def test_an_expectation_of_the_wrong_shape_is_an_error(
    tmp_path: Path, expect: str, message: str
) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    tests = tmp_path / "p.tests.yaml"
    tests.write_text(
        "policy: p.yaml\ncases:\n  - name: c\n    request: {messages: hi}\n"
        f"    expect: {expect}\n"
    )
    (case,) = run_tests_file(tests).cases
    assert case.error == message
    assert not case.passed
    assert main(["test", str(tests)]) == 1


def test_well_formed_expectations_still_pass(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    tests = tmp_path / "p.tests.yaml"
    tests.write_text(
        "policy: p.yaml\ncases:\n  - name: c\n    request: {messages: hi}\n"
        "    expect: {route: default, model: mini, candidates: [mini], budgets: []}\n"
    )
    (case,) = run_tests_file(tests).cases
    assert case.error is None
    assert case.passed


BOOLEAN_PARAMS = """policyroute: 1
name: demo
models:
  mini: {model: openai/gpt-4o-mini}
routes:
  - name: default
    to: mini
    params: {temperature: 0, parallel_tool_calls: true}
"""


@pytest.mark.parametrize(
    ("params", "diff"),
    [
        ("{temperature: 0, parallel_tool_calls: true}", None),
        ("{temperature: 0.0, parallel_tool_calls: true}", None),  # the same number
        (
            "{temperature: false, parallel_tool_calls: true}",
            "-  temperature: false\n+  temperature: 0",
        ),
        (
            "{temperature: 0, parallel_tool_calls: 1}",
            "-  parallel_tool_calls: 1\n+  parallel_tool_calls: true",
        ),
    ],
)
def test_a_boolean_is_not_equal_to_a_number(tmp_path: Path, params: str, diff: str | None) -> None:
    # Python's `False == 0` made a case pass that no YAML reader calls equal.
    (tmp_path / "p.yaml").write_text(BOOLEAN_PARAMS)
    tests = tmp_path / "p.tests.yaml"
    tests.write_text(
        "policy: p.yaml\ncases:\n  - name: c\n    request: {messages: hi}\n"
        f"    expect: {{route: default, params: {params}}}\n"
    )
    (case,) = run_tests_file(tests).cases
    assert case.error is None
    assert case.passed is (diff is None)
    if diff is not None:
        assert diff in case.diff()


TWO_BUDGETS = """policyroute: 1
name: demo
models:
  mini: {model: openai/gpt-4o-mini}
budgets:
  - {name: daily, limit_usd: 5, window: day}
  - {name: monthly, limit_usd: 50, window: month}
routes:
  - name: default
    to: mini
"""


@pytest.mark.parametrize(
    ("budgets", "diff"),
    [
        ("[daily, monthly]", None),
        ("[monthly, daily]", None),  # every budget in scope is charged: no order among them
        ("[monthly]", " budgets:\n+- daily\n - monthly"),
        ("[daily, daily, monthly]", " - daily\n-- daily\n - monthly"),
    ],
)
def test_the_budgets_in_scope_compare_in_any_order(
    tmp_path: Path, budgets: str, diff: str | None
) -> None:
    (tmp_path / "p.yaml").write_text(TWO_BUDGETS)
    tests = tmp_path / "p.tests.yaml"
    tests.write_text(
        "policy: p.yaml\ncases:\n  - name: c\n    request: {messages: hi}\n"
        f"    expect: {{budgets: {budgets}}}\n"
    )
    (case,) = run_tests_file(tests).cases
    assert case.error is None
    assert case.passed is (diff is None)
    if diff is not None:
        assert diff in case.diff()
