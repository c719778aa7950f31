"""A tests file's ``description``, and a case's, is text, as a policy's is by its schema: a
list or mapping there was taken without a word, so a mistake in indentation that put the
cases under ``description`` could pass unseen."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.cli import main

CASE = "  - name: a\n{extra}    request: {{}}\n    expect: {{route: default}}\n"


def _run(tests: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["test", str(tests)])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    ("written", "kind"),
    [
        ("[checks, routing]", "a list"),
        ("{text: routing}", "a mapping"),
        ("", "null"),
        ("2026", "a number (quote it to keep it text)"),
    ],
)
def test_a_file_description_that_is_not_text_is_an_error_with_its_line(
    policy_path: Path, capsys: pytest.CaptureFixture[str], written: str, kind: str
) -> None:
    tests = policy_path.with_name("p.tests.yaml")
    tests.write_text(
        f"policy: policy.yaml\ndescription: {written}\ncases:\n" + CASE.format(extra=""),
        encoding="utf-8",
    )

    code, out = _run(tests, capsys)

    assert code == 1
    assert f"{tests}:2: 'description' must be a string, got {kind}\n" in out
    assert out.rstrip().endswith("0 passed, 0 failed, 1 file with errors")


def test_a_case_description_that_is_not_text_fails_that_case_alone(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = policy_path.with_name("p.tests.yaml")
    tests.write_text(
        "policy: policy.yaml\ndescription: routing checks\ncases:\n"
        + CASE.format(extra="    description:\n      - the default route\n")
        + CASE.format(extra="    description: plain text\n").replace("name: a", "name: b"),
        encoding="utf-8",
    )

    code, out = _run(tests, capsys)

    assert code == 1
    assert f"FAILED {tests}:4 a\n  'description' must be a string, got a list\n" in out
    assert out.rstrip().endswith("1 passed, 1 failed")
