"""``expect: {error: RoutingError}`` pins any refusal, as the README offers it.

A valid policy always has a catch-all route, so routing refuses a request only with
``NoCandidateError``; compared by exact class name, ``error: RoutingError`` could never pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.policytest import run_tests_file

# The conftest policy's `offline` route goes to a local model without vision.
IMAGE = '[{role: user, content: [{type: image_url, image_url: {url: "https://x/y.png"}}]}]'


def _tests_file(policy_path: Path, request: str, expect: str) -> Path:
    path = policy_path.parent / "refusals.tests.yaml"
    path.write_text(
        f"policy: {policy_path.name}\n"
        "cases:\n"
        "  - name: the case\n"
        f"    request: {request}\n"
        f"    expect: {expect}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("error", ["RoutingError", "NoCandidateError"])
def test_a_refusal_passes_as_the_class_it_raised_or_its_base(
    policy_path: Path, capsys: pytest.CaptureFixture[str], error: str
) -> None:
    request = f"{{metadata: {{offline: true}}, messages: {IMAGE}}}"
    tests = _tests_file(policy_path, request, f"{{error: {error}}}")

    (case,) = run_tests_file(tests).cases
    assert case.error is None
    assert case.actual == {"error": error}
    assert case.passed
    assert main(["test", str(tests)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("1 passed, 0 failed")


def test_a_request_that_is_routed_still_fails_an_expected_refusal(policy_path: Path) -> None:
    tests = _tests_file(policy_path, "{messages: hi}", "{error: RoutingError}")

    (case,) = run_tests_file(tests).cases
    assert not case.passed
    assert case.actual == {"route": "default", "model": "local"}
