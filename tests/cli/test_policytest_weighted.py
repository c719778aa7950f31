"""`policyroute test` on routes whose order a ``weighted`` group draws at random per call.

Compared against one draw, an expected ``model`` or ``candidates`` passed or failed by chance:
a CI job that went red one run in two. The runner routes with fixed seeds, and an expectation
that the draws disagree on is an error in the case that names the group.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: spread
models:
  a: {model: openai/gpt-4o-mini, weight: 1}
  b: {model: openai/gpt-4o, weight: 1}
  c: {model: openai/gpt-4.1}
  never: {model: openai/gpt-4.1-mini, weight: 0}
groups:
  spread: {strategy: weighted, models: [a, b]}
  lopsided: {strategy: weighted, models: [a, never]}
routes:
  - name: pinned
    when: {metadata.task: pinned}
    to: [c, spread]
  - name: lopsided
    when: {metadata.task: lopsided}
    to: lopsided
  - name: default
    to: spread
"""


def _run(tmp_path: Path, cases: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "spread.yaml").write_text(POLICY, encoding="utf-8")
    tests = tmp_path / "spread.tests.yaml"
    tests.write_text("policy: spread.yaml\ncases:\n" + cases, encoding="utf-8")
    code = main(["test", str(tests)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    "expect",
    [
        "{route: default, model: a}",
        "{route: default, candidates: [b, a]}",
        # without `route` beside it, the order depends on the draw all the same
        "{model: a}",
        "{model: b}",
        "{candidates: [a, b]}",
        "{candidates: [b, a], budgets: []}",
    ],
)
def test_an_expected_order_that_depends_on_the_draw_is_a_case_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], expect: str
) -> None:
    case = f"  - name: by chance\n    request: {{messages: hi}}\n    expect: {expect}\n"
    for _ in range(4):  # the same verdict every run, never a pass by luck
        code, out = _run(tmp_path, case, capsys)
        assert code == 1
        assert "depends on chance: route 'default'" in out
        assert "group 'spread'" in out
        assert "expect 'route', 'params' or 'budgets'" in out
        assert out.rstrip().endswith("0 passed, 1 failed")


def test_what_every_draw_agrees_on_is_compared_as_usual(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = """\
  - name: the route alone
    request: {messages: hi}
    expect: {route: default}
  - name: a fixed first model before the draw
    request: {messages: hi, metadata: {task: pinned}}
    expect: {route: pinned, model: c}
  - name: a member of weight 0 always comes last
    request: {messages: hi, metadata: {task: lopsided}}
    expect: {route: lopsided, candidates: [a, never]}
  - name: a wrong fixed model still fails as a diff
    request: {messages: hi, metadata: {task: pinned}}
    expect: {route: pinned, model: a}
"""
    code, out = _run(tmp_path, cases, capsys)
    assert code == 1
    assert "depends on chance" not in out
    assert "-model: a" in out
    assert "+model: c" in out
    assert out.rstrip().endswith("3 passed, 1 failed")
