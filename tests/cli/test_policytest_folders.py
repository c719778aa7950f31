"""``policyroute test FOLDER`` searches folders as ``policyroute validate`` does.

Before, a tests file spelt ``*.TESTS.YAML`` was skipped by ``validate`` (as a tests file) but
never run by ``test``, and ``test .`` at a repository root ran tests files that third-party
packages keep in ``node_modules`` or a virtual environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policyroute.cli import main


def _suites(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The names of the tests files run, from the ``ok  FILE (N cases)`` lines."""
    lines = capsys.readouterr().out.splitlines()
    return sorted(Path(line.split()[1]).name for line in lines if line.startswith("ok "))


def test_a_tests_file_in_capitals_is_run(
    tests_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shouted = tests_path.with_name("policy.TESTS.YAML")
    tests_path.rename(shouted)
    assert main(["test", str(shouted.parent)]) == 0
    assert _suites(capsys) == ["policy.TESTS.YAML"]


def test_vendored_and_virtualenv_folders_are_not_searched(
    tests_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tests_path.parent
    for folder in ("node_modules/pkg", "venv/lib", "__pycache__"):
        (root / folder).mkdir(parents=True)
        (root / folder / "other.tests.yaml").write_text("not: [a tests file", encoding="utf-8")
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    assert main(["test", str(root)]) == 0
    assert _suites(capsys) == ["policy.tests.yaml"]
