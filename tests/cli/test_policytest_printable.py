"""``policyroute test`` prints what comes from a tests file escaped, as ``explain`` does: a
case name holding a line break split the report, and an escape sequence reached the terminal
or CI log (a line starting ``::error`` is even a GitHub Actions command)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.cli import main


def test_a_case_name_and_value_with_control_characters_are_shown_escaped(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = policy_path.with_name("p.tests.yaml")
    tests.write_text(
        "policy: policy.yaml\n"
        "cases:\n"
        '  - name: "one\\n::error::two \\e[2J\\u202e"\n'
        "    request: {messages: hi}\n"
        '    expect: {route: "def\\nault"}\n'
        '  - name: "\\e[31mred"\n'
        "    request: {messages: hi}\n"
        "    expect: {route: code}\n",
        encoding="utf-8",
    )

    assert main(["test", str(tests)]) == 1

    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\u202e" not in out
    lines = out.splitlines()
    first = lines.index(f"FAILED {tests}:3 one\\n::error::two \\x1b[2J\\u202e")
    assert lines[first + 1] == (
        "  'expect.route' names no route of the policy: 'def\\nault' (did you mean 'default'?)"
    )
    assert f"FAILED {tests}:6 \\x1b[31mred" in lines
    assert not any(line.startswith("::error") for line in lines)
