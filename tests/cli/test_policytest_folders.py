"""``policyroute test FOLDER`` searches folders as ``policyroute validate`` does.

Before, a tests file spelt ``*.TESTS.YAML`` was skipped by ``validate`` (as a tests file) but
never run by ``test``, and ``test .`` at a repository root ran tests files that third-party
packages keep in ``node_modules`` or a virtual environment.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from policyroute.cli import main
from policyroute.policytest import NO_TESTS_FILES, run_policy_tests


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


def test_a_folder_without_tests_files_is_reported_among_the_others(
    tests_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One stale folder in a pre-commit hook's list was passed over in silence: exit 0.
    empty = tmp_path / "renamed"
    empty.mkdir()
    (empty / "policy.yaml").write_text("not a tests file", encoding="utf-8")

    assert main(["test", str(empty), str(tests_path)]) == 2

    captured = capsys.readouterr()
    assert captured.out.splitlines()[:2] == [
        f"ERROR {empty}",
        f"ok    {tests_path} (3 cases)",
    ]
    assert f"{empty}: no tests files in this folder" in captured.out
    assert captured.out.rstrip().endswith("3 passed, 0 failed, 1 file with errors")
    assert f"policyroute test: error: no *.tests.yaml files found in {empty}" in captured.err


def test_a_broken_link_in_a_folder_is_named_as_one(
    tests_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tests_path.with_name("gone.tests.yaml")
    link.symlink_to("nowhere.tests.yaml")

    assert main(["test", str(tests_path.parent)]) == 1  # found in a folder: not a usage error

    out = capsys.readouterr().out
    assert f"{link}: a broken symbolic link: nowhere.tests.yaml does not exist" in out
    assert "no such file or directory" not in out


def test_a_pipe_in_a_folder_is_named_not_read(
    tests_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Opened for reading, a pipe nobody writes to blocked the whole run, for ever.
    pipe = tests_path.with_name("pipe.tests.yaml")
    os.mkfifo(pipe)
    statuses: list[int] = []
    run = threading.Thread(
        target=lambda: statuses.append(main(["test", str(tests_path.parent)])), daemon=True
    )
    run.start()
    run.join(timeout=120)
    if run.is_alive():  # blocked opening the pipe: let it go, then fail
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        run.join()
    assert statuses == [1]
    out = capsys.readouterr().out
    assert f"{pipe}: not a regular file (a pipe or device in a folder is never read)" in out
    assert out.rstrip().endswith("3 passed, 0 failed, 1 file with errors")


def test_run_policy_tests_names_what_a_folder_cannot_run(tests_path: Path) -> None:
    tests_path.with_name("gone.tests.yaml").symlink_to("nowhere.tests.yaml")
    empty = tests_path.parent / "empty"
    empty.mkdir()

    results = run_policy_tests([tests_path.parent, empty])

    assert [(Path(r.file).name, r.ok) for r in results] == [
        ("gone.tests.yaml", False),
        ("policy.tests.yaml", True),
        ("empty", False),
    ]
    assert results[0].problems == (
        f"{tests_path.with_name('gone.tests.yaml')}: a broken symbolic link:"
        " nowhere.tests.yaml does not exist (fix or remove the link)",
    )
    assert results[2].problems == (f"{empty}: {NO_TESTS_FILES}",)


def test_a_tests_file_named_twice_runs_once(
    tests_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As validate counts files: before, each spelling ran the cases again, 12 passed of 3.
    monkeypatch.chdir(tests_path.parent)
    link = tests_path.with_name("link.tests.yaml")
    link.symlink_to(tests_path.name)
    named = [tests_path.name, str(tests_path), f"../{tests_path.parent.name}/{tests_path.name}"]

    assert main(["test", *named, "."]) == 0

    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"ok    {tests_path.name} (3 cases)"
    assert out.rstrip().endswith("\n3 passed, 0 failed")
