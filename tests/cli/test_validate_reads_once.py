"""``policyroute validate`` reads and parses each policy file once, however often it is named.

A file named twice (by the same path, another spelling of it, a link, or inside a folder also
given) used to be validated each time and all but the first result dropped: a broken policy
was read and parsed again only to report nothing new.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from policyroute.cli import main


@pytest.fixture
def folder(tmp_path: Path, broken_path: Path, policy_path: Path) -> Path:
    """A folder with a broken policy (one error, one warning) and a valid one."""
    root = tmp_path / "policies"
    root.mkdir()
    broken_path.rename(root / "broken.yaml")
    policy_path.rename(root / "good.yaml")
    return root


def _same_file_spellings(folder: Path) -> list[list[str]]:
    broken = folder / "broken.yaml"
    link = folder.parent / "link.yaml"
    link.symlink_to(broken)
    dotted = str(folder / "." / "broken.yaml")
    return [
        [str(broken), str(broken)],
        [str(broken), dotted],
        [str(broken), str(link)],
        [str(link), str(broken), dotted],
    ]


def test_a_broken_policy_named_again_is_read_once(
    folder: Path, reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = os.path.realpath(folder / "broken.yaml")
    for argv in _same_file_spellings(folder):
        reads.clear()
        assert main(["validate", "--format", "json", *argv]) == 1
        report = json.loads(capsys.readouterr().out)
        assert reads == [broken], argv
        assert report["summary"] == {"files": 1, "errors": 1, "warnings": 1}


def test_a_file_and_the_folder_holding_it_read_each_file_once(
    folder: Path, reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = folder / "broken.yaml"

    assert main(["validate", str(broken), str(folder), str(folder), str(broken)]) == 1

    out = capsys.readouterr().out
    assert sorted(reads) == sorted(
        os.path.realpath(folder / n) for n in ("broken.yaml", "good.yaml")
    )
    assert out.count("[PR101]") == 1  # the broken one's error, reported once
    assert out.rstrip().endswith("1 error, 1 warning in 2 files")


def test_the_order_of_the_report_is_the_order_the_files_were_first_named(
    folder: Path, reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    good = folder / "good.yaml"

    assert main(["validate", "--format", "json", str(good), str(folder)]) == 1

    files = [f["file"] for f in json.loads(capsys.readouterr().out)["files"]]
    assert files == [str(good), str(folder / "broken.yaml")]
    assert len(reads) == 2


def test_a_missing_path_or_an_empty_folder_named_twice_is_reported_once(
    tmp_path: Path, reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing.yaml"

    status = main(
        ["validate", "--format", "json", str(missing), str(empty), str(missing), str(empty)]
    )

    assert status == 2
    report = json.loads(capsys.readouterr().out)
    assert [f["file"] for f in report["files"]] == [str(missing), str(empty)]
    assert [f["diagnostics"][0]["code"] for f in report["files"]] == ["PR001", "PR001"]
    assert report["files"][1]["diagnostics"][0]["message"] == "no policy files in this folder"
    assert reads == []


def test_an_unreadable_entry_in_a_folder_keeps_its_reason_and_hint(
    folder: Path, reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "dangling.yaml").symlink_to(folder / "nowhere.yaml")

    assert main(["validate", "--format", "json", str(folder), str(folder)]) == 1

    report = json.loads(capsys.readouterr().out)
    entries = {Path(f["file"]).name: f for f in report["files"]}
    assert sorted(entries) == ["broken.yaml", "dangling.yaml", "good.yaml"]
    dangling = entries["dangling.yaml"]["diagnostics"]
    assert [d["code"] for d in dangling] == ["PR001"]
    assert len(reads) == 2  # the dangling link is described, never opened
