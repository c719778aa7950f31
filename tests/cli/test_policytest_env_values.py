"""A case's ``env`` sets a number or boolean as the tests file writes it.

``env: {FLAG: true}`` set the variable to ``True`` and ``VERSION: 1.10`` to ``1.1``: Python's
rendering of what YAML read, which no program reading the variable expects (a shell's
``[ "$FLAG" = true ]`` failed). The text written is what a variable is set to, also through an
anchor or a ``<<`` merge; a list, a mapping or null cannot be set and names its key and line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import policyroute.policy.loader as loader
from policyroute.cli import main

NAMES = ("PR_ENV_FLAG", "PR_ENV_OFF", "PR_ENV_VERSION", "PR_ENV_ZIP", "PR_ENV_HEX", "PR_ENV_TEXT")


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The case variables as set when each distinct env loads the policy (the real loader
    runs: this only looks at the environment it runs in)."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    found: list[dict[str, str]] = []
    real = loader.load_policy

    def looking(*args: Any, **kwargs: Any) -> Any:
        found.append({n: os.environ[n] for n in NAMES if n in os.environ})
        return real(*args, **kwargs)

    monkeypatch.setattr(loader, "load_policy", looking)
    return found


def _write(policy_path: Path, cases: str) -> Path:
    tests = policy_path.with_name("env.tests.yaml")
    tests.write_text(
        "policy: policy.yaml\n"
        "x-env: &env {PR_ENV_FLAG: TRUE, PR_ENV_VERSION: 2.50}\n"
        "cases:\n" + cases,
        encoding="utf-8",
    )
    return tests


def test_numbers_and_booleans_are_set_as_written(
    policy_path: Path, seen: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    tests = _write(
        policy_path,
        "  - name: as written\n"
        "    env: {PR_ENV_FLAG: true, PR_ENV_OFF: false, PR_ENV_VERSION: 1.10,"
        " PR_ENV_ZIP: 007, PR_ENV_HEX: 0x1F, PR_ENV_TEXT: 'true'}\n"
        "    request: {}\n"
        "    expect: {route: default}\n"
        "  - name: through an anchor\n"
        "    env: *env\n"
        "    request: {}\n"
        "    expect: {route: default}\n"
        "  - name: through a merge\n"
        "    env: {<<: *env, PR_ENV_ZIP: 1e3}\n"
        "    request: {}\n"
        "    expect: {route: default}\n",
    )

    assert main(["test", str(tests)]) == 0

    assert capsys.readouterr().out.rstrip().endswith("3 passed, 0 failed")
    assert seen == [
        {
            "PR_ENV_FLAG": "true",
            "PR_ENV_OFF": "false",
            "PR_ENV_VERSION": "1.10",
            "PR_ENV_ZIP": "007",
            "PR_ENV_HEX": "0x1F",
            "PR_ENV_TEXT": "true",
        },
        {"PR_ENV_FLAG": "TRUE", "PR_ENV_VERSION": "2.50"},
        {"PR_ENV_FLAG": "TRUE", "PR_ENV_VERSION": "2.50", "PR_ENV_ZIP": "1e3"},
    ]


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("[1, 2]", "a list"),
        ("{a: 1}", "a mapping"),
        ("", "null (write '' for an empty value)"),
    ],
)
def test_a_value_no_variable_can_hold_names_its_key_and_line(
    policy_path: Path,
    seen: list[dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    value: str,
    got: str,
) -> None:
    tests = _write(
        policy_path,
        "  - name: unsettable\n"
        "    env:\n"
        "      PR_ENV_TEXT: fine\n"
        f"      PR_ENV_FLAG: {value}\n"
        "    request: {}\n"
        "    expect: {route: default}\n",
    )

    assert main(["test", str(tests)]) == 1

    out = capsys.readouterr().out
    assert (
        f"FAILED {tests}:4 unsettable\n"
        f"  'env.PR_ENV_FLAG' at line 7 must be a string, number or boolean, got {got}\n"
    ) in out
    assert seen == []
