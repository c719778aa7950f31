"""A path that names nothing does not stop ``validate`` or ``test`` from checking the others.

A pre-commit hook or CI job gives many paths at once; one stale name among them must not hide
the problems of every file after it. Each missing path is reported in its place, with the
others, and the exit status (2, a usage error) says that a path was wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policyroute.cli import main

SCRIPT = Path(sys.executable).parent / "policyroute"


def test_validate_checks_every_path_around_a_missing_one(
    policy_path: Path, broken_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = policy_path.parent / "missing.yaml"

    status = main(["validate", str(policy_path), str(missing), str(broken_path)])

    captured = capsys.readouterr()
    assert status == 2
    assert f"{missing}: no such file or directory [PR001]" in captured.out
    assert "unknown model or group 'sonnet'" in captured.out  # the file after it was checked
    assert "2 errors, 1 warning in 3 files" in captured.out
    assert f"policyroute validate: error: no such file or directory: {missing}" in captured.err


def test_validate_json_lists_every_file_with_the_missing_one_in_its_place(
    policy_path: Path, broken_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = policy_path.parent / "missing.yaml"

    status = main(
        ["validate", "--format", "json", str(policy_path), str(missing), str(broken_path)]
    )

    doc = json.loads(capsys.readouterr().out)
    assert status == 2
    assert doc["ok"] is False
    assert doc["summary"] == {"files": 3, "errors": 2, "warnings": 1}
    assert [(f["file"], f["ok"]) for f in doc["files"]] == [
        (str(policy_path), True),
        (str(missing), False),
        (str(broken_path), False),
    ]
    (diagnostic,) = doc["files"][1]["diagnostics"]
    assert (diagnostic["code"], diagnostic["file"]) == ("PR001", str(missing))


def test_validate_github_annotates_the_missing_path_and_a_device(
    policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = policy_path.parent / "missing.yaml"

    status = main(["validate", "--format", "github", str(missing), os.devnull, str(policy_path)])

    out = capsys.readouterr().out
    assert status == 2
    assert f"::error file={missing},title=PR001::no such file or directory" in out
    assert f"::error file={os.devnull},title=PR001::not a file" in out
    assert out.endswith("2 errors, 0 warnings in 3 files\n")


def test_validate_reports_a_file_named_twice_once(
    policy_path: Path, broken_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `validate policies/ policies/broken.yaml`: the folder already holds the file.
    status = main(["validate", str(policy_path.parent), str(broken_path)])

    out = capsys.readouterr().out
    assert status == 1
    assert out.count("[PR101]") == 1
    assert out.endswith("1 error, 1 warning in 2 files\n")


def test_test_runs_every_tests_file_around_a_missing_one(
    tests_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tests_path.parent / "gone.tests.yaml"
    later = tests_path.parent / "later.tests.yaml"
    later.write_text(tests_path.read_text(encoding="utf-8"), encoding="utf-8")

    status = main(["test", str(missing), str(tests_path), str(later)])

    captured = capsys.readouterr()
    assert status == 2
    assert f"ERROR {missing}" in captured.out
    assert f"ok    {later} (3 cases)" in captured.out
    assert captured.out.endswith("6 passed, 0 failed, 1 file with errors\n")
    assert f"policyroute test: error: no such file or directory: {missing}" in captured.err


def test_the_installed_script_validates_past_a_missing_path(
    policy_path: Path, broken_path: Path
) -> None:
    done = subprocess.run(
        [str(SCRIPT), "validate", "--format", "json", "missing.yaml", broken_path.name],
        cwd=policy_path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    doc = json.loads(done.stdout)
    assert [f["file"] for f in doc["files"]] == ["missing.yaml", broken_path.name]
    assert done.stderr == "policyroute validate: error: no such file or directory: missing.yaml\n"
