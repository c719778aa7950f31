"""``policyroute validate FOLDER``: which files a folder search checks, and what it reports.

A pre-commit hook or CI job runs ``validate .`` at a repository root: the workflows, the
hook configuration and a virtual environment's YAML there are not policies, while a broken
link, an endless pipe or a mistyped folder must be said, each in its place.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyroute.cli import main

NOT_A_POLICY = "on: push\njobs: {build: {runs-on: ubuntu-latest}}\n"


@pytest.fixture
def valid(policy_path: Path) -> str:
    """The text of a valid policy (see conftest)."""
    return policy_path.read_text(encoding="utf-8")


@pytest.fixture
def broken(broken_path: Path) -> str:
    """The text of a policy with an error at 9:9 and a warning (see conftest)."""
    return broken_path.read_text(encoding="utf-8")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty folder of its own (``tmp_path`` also holds the conftest's policy files)."""
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path, valid: str) -> Path:
    """A repository root: one policy, and YAML in every place a search must pass over."""
    root = tmp_path / "repo"
    _write(root / "policies" / "support.yaml", valid)
    _write(root / "policies" / "support.tests.yaml", "cases: []\n")
    _write(root / "policies" / "other_tests.YML", "cases: []\n")
    _write(root / ".github" / "workflows" / "ci.yml", NOT_A_POLICY)
    _write(root / ".pre-commit-config.yaml", "repos: []\n")
    _write(root / ".venv" / "lib" / "site-packages" / "pkg" / "data.yaml", NOT_A_POLICY)
    _write(root / "venv" / "pyvenv.cfg", "home = /usr/bin\n")
    _write(root / "venv" / "lib" / "pkg" / "conf.yaml", NOT_A_POLICY)
    _write(root / "web" / "node_modules" / "pkg" / "config.yml", NOT_A_POLICY)
    _write(root / "src" / "__pycache__" / "x.yaml", NOT_A_POLICY)
    return root


def test_a_repository_root_checks_its_policies_and_nothing_hidden_or_vendored(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["validate", str(repo)])

    out = capsys.readouterr().out
    assert out == "0 errors, 0 warnings in 1 file\n"
    assert status == 0


def test_the_files_searched_are_listed_in_json(
    valid: str, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(repo / "Zeta.YAML", valid)

    status = main(["validate", "--format", "json", str(repo)])

    doc = json.loads(capsys.readouterr().out)
    files = [Path(f["file"]).relative_to(repo).as_posix() for f in doc["files"]]
    assert files == ["Zeta.YAML", "policies/support.yaml"]
    assert status == 0


def test_a_hidden_path_named_on_the_command_line_is_checked(
    broken: str, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hidden = _write(repo / ".policies" / "prod.yaml", broken)

    status = main(["validate", str(repo / ".github" / "workflows" / "ci.yml"), str(hidden.parent)])

    out = capsys.readouterr().out
    assert f"{repo}/.github/workflows/ci.yml:1:1 on: unknown property 'on'" in out
    assert f"{hidden}:9:9 routes[0].to: unknown model or group 'sonnet'" in out
    assert out.endswith(" in 2 files\n")
    assert status == 1


def test_extensions_are_matched_in_any_case(
    valid: str, broken: str, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(root / "PROD.YAML", broken)
    _write(root / "dev.Yml", valid)
    _write(root / "dev.TESTS.YAML", "cases: []\n")

    status = main(["validate", str(root)])

    out = capsys.readouterr().out
    assert f"{root}/PROD.YAML:9:9 routes[0].to" in out
    assert out.endswith("1 error, 1 warning in 2 files\n")
    assert status == 1


def test_a_broken_link_in_a_folder_is_an_error_in_its_place(
    valid: str, broken: str, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(root / "a.yaml", valid)
    (root / "b.yaml").symlink_to("moved-away.yaml")
    _write(root / "c.yaml", valid)

    status = main(["validate", str(root)])

    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{root}/b.yaml: a broken symbolic link: moved-away.yaml does not exist"
        " (fix or remove the link) [PR001]",
        "1 error, 0 warnings in 3 files",
    ]
    assert status == 1


def test_a_broken_link_is_a_github_annotation(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "b.yaml").symlink_to("moved-away.yaml")

    status = main(["validate", "--format", "github", str(root)])

    out = capsys.readouterr().out
    assert out.startswith(f"::error file={root}/b.yaml,title=PR001::a broken symbolic link")
    assert status == 1


def test_link_loops_end_and_are_reported(
    valid: str, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(root / "sub" / "p.yaml", valid)
    (root / "sub" / "up").symlink_to("..")  # a folder loop is never followed
    (root / "x.yaml").symlink_to("y.yaml")
    (root / "y.yaml").symlink_to("x.yaml")

    status = main(["validate", str(root)])

    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{root}/x.yaml: a symbolic link loop (to y.yaml) (the link never reaches a file) [PR001]",
        f"{root}/y.yaml: a symbolic link loop (to x.yaml) (the link never reaches a file) [PR001]",
        "2 errors, 0 warnings in 3 files",
    ]
    assert status == 1


def test_a_link_to_a_policy_file_is_followed(
    valid: str, broken: str, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = _write(root / "shared" / "base.txt", broken)
    _write(root / "policies" / "own.yaml", valid)
    (root / "policies" / "base.yaml").symlink_to(shared)

    status = main(["validate", str(root / "policies")])

    out = capsys.readouterr().out
    assert f"{root}/policies/base.yaml:9:9 routes[0].to" in out
    assert status == 1


def test_a_pipe_in_a_folder_is_reported_not_read(
    valid: str, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(root / "a.yaml", valid)
    os.mkfifo(root / "live.yaml")  # opening it would wait for a writer that never comes

    status = main(["validate", str(root)])

    out = capsys.readouterr().out
    assert f"{root}/live.yaml: not a regular file" in out
    assert status == 1


def test_a_folder_that_cannot_be_listed_is_reported(
    valid: str,
    broken: str,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Permission bits do not stop root, so the listing itself is made to fail.
    _write(root / "a.yaml", valid)
    locked = root / "locked"
    _write(locked / "p.yaml", broken)
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    status = main(["validate", str(root)])

    out = capsys.readouterr().out
    assert f"{locked}: cannot list this folder: Permission denied [PR001]" in out
    assert status == 1


def test_a_folder_without_policies_among_other_paths_is_a_usage_error(
    valid: str, policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"  # a folder mistyped for policies/
    _write(docs / ".hidden.yaml", valid)
    _write(docs / "README.md", "# docs\n")

    status = main(["validate", str(policy_path), str(docs)])

    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{docs}: no policy files in this folder (policies end in .yaml or .yml; hidden"
        " folders, virtual environments, node_modules and *.tests.yaml files are not"
        " searched) [PR001]",
        "1 error, 0 warnings in 2 files",
    ]
    assert captured.err == f"policyroute validate: error: no policy files found in {docs}\n"
    assert status == 2


def test_a_folder_without_policies_is_listed_in_json(
    policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    status = main(["validate", "--format", "json", str(empty), str(policy_path)])

    doc = json.loads(capsys.readouterr().out)
    assert [(f["file"], f["ok"]) for f in doc["files"]] == [
        (str(empty), False),
        (str(policy_path), True),
    ]
    assert doc["files"][0]["diagnostics"][0]["code"] == "PR001"
    assert status == 2


def test_only_folders_without_policies_is_the_usage_error_alone(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    status = main(["validate", str(repo / "web"), str(empty)])

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"policyroute validate: error: no policy files found in {repo / 'web'}, {empty}\n"
    )
    assert status == 2


@pytest.fixture
def endless_pipe() -> Iterator[tuple[str, list[int]]]:
    """``/dev/fd/N`` of a pipe a thread keeps filling, as ``<(yes)`` does, and the count of
    bytes written. The thread stops at 64 MiB, so that a reader with no bound ends too."""
    read_end, write_end = os.pipe()
    written = [0]

    def write() -> None:
        chunk = b"y\n" * 32768
        try:
            while written[0] < 64 * 1024 * 1024:
                written[0] += os.write(write_end, chunk)
        except BrokenPipeError:
            pass
        finally:
            os.close(write_end)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield f"/dev/fd/{read_end}", written
    finally:
        os.close(read_end)
        writer.join(10)


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="needs /dev/fd")
def test_an_endless_pipe_is_refused_after_a_bounded_read(
    endless_pipe: tuple[str, list[int]], policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, written = endless_pipe

    status = main(["validate", name, str(policy_path)])

    out = capsys.readouterr().out
    assert (
        f"{name}: the policy file is more than 2,097,152 bytes long; a policy has at most"
        " 524,288 characters (is this the right file?) [PR009]"
    ) in out
    assert out.endswith("1 error, 0 warnings in 2 files\n")
    assert status == 1
    assert written[0] < 4 * 1024 * 1024  # read up to the limit, and no further
