"""``receipts report`` reads every input it can, and says which it could not.

A cron job hands ``receipts report`` a glob's worth of files; one rotated away between the
glob and the read must not hide the spend in all the others, nor may the totals of what was
read pass for complete ones. Each input that cannot be read is named in its place and at the
end, the totals of the rest are printed marked as leaving it out, and the exit status (2 for
a path that does not exist, as for ``validate``) says something was missing. With
``--format json``, usage errors of ``receipts report`` and ``budget status`` print the
``{"error": ...}`` document.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from policyroute.cli import main

CALL = {
    "schema_version": 1,
    "kind": "call",
    "status": "ok",
    "cost": "0.25",
    "model": "m",
    "ts": "2026-01-02T03:04:05.000+00:00",
}


def _receipts(path: Path, request_id: str) -> Path:
    path.write_text(json.dumps({**CALL, "request_id": request_id}) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def around(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two receipts files, one call each, and between them a path that names nothing."""
    return (
        _receipts(tmp_path / "a.jsonl", "a"),
        tmp_path / "missing.jsonl",
        _receipts(tmp_path / "b.jsonl", "b"),
    )


def _run(paths: tuple[Path, ...], *extra: str) -> int:
    return main(["receipts", "report", *map(str, paths), *extra])


def test_the_files_around_a_missing_one_are_all_read(
    around: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, missing, _ = around

    status = _run(around, "--format", "csv")

    captured = capsys.readouterr()
    assert status == 2
    assert "total,all,2,0,0,0.500000," in captured.out  # both files' calls, not a's alone
    assert f"error: {missing}: no such file or directory" in captured.err
    assert f"error: no such file or directory: {missing}" in captured.err


def test_the_json_report_of_a_partial_read_names_what_it_left_out(
    around: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, missing, _ = around

    status = _run(around, "--format", "json")

    doc = json.loads(capsys.readouterr().out)
    assert status == 2
    assert doc["total"]["calls"] == 2
    assert doc["unread_files"] == [{"file": str(missing), "reason": "no such file or directory"}]
    assert doc["error"] == {
        "type": "UsageError",
        "message": f"no such file or directory: {missing}",
    }
    # In its place among the problems: the whole input, line 0, an error.
    assert doc["problems"] == [
        {
            "file": str(missing),
            "line": 0,
            "message": "no such file or directory",
            "partial": False,
        }
    ]


def test_a_complete_json_report_says_no_file_was_left_out(
    around: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, _, last = around

    assert _run((first, last), "--format", "json") == 0

    doc = json.loads(capsys.readouterr().out)
    assert doc["unread_files"] == []
    assert "error" not in doc


def test_the_table_of_a_partial_read_is_marked_incomplete(
    around: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, missing, _ = around

    assert _run(around) == 2

    out = capsys.readouterr().out
    assert out.rstrip().endswith(
        f"INCOMPLETE: 1 input not read, the totals leave it out: {missing}"
        " (no such file or directory)"
    )


def test_every_missing_file_is_named(
    around: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, missing, last = around
    other = missing.with_name("other.jsonl")

    assert _run((missing, first, other, last)) == 2

    err = capsys.readouterr().err
    assert f"error: no such file or directory: {missing}, {other}" in err


def test_a_device_among_files_is_named_and_the_files_read(
    around: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, _, last = around

    status = _run((first, Path(os.devnull), last), "--format", "json")

    captured = capsys.readouterr()
    assert status == 2
    doc = json.loads(captured.out)
    assert doc["total"]["calls"] == 2
    assert doc["error"] == {"type": "UsageError", "message": f"not a file: {os.devnull}"}
    assert f"error: {os.devnull}: not a file (a device is never read)" in captured.err


def test_a_folder_among_files_is_unreadable_input_exit_1(
    around: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, _, last = around
    folder = first.parent / "old"
    folder.mkdir()

    status = _run((first, folder, last), "--format", "json")

    doc = json.loads(capsys.readouterr().out)
    assert status == 1
    assert doc["total"]["calls"] == 2
    assert doc["unread_files"] == [
        {"file": str(folder), "reason": "a directory, not a receipts file"}
    ]
    assert doc["error"] == {"type": "OSError", "message": f"cannot read: {folder}"}


def test_a_file_that_fails_to_open_is_named_and_the_rest_read(
    around: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Root opens any file whatever its mode: a refusal at open() is made by hand here.
    import builtins

    from policyroute.costs import receipt_files

    first, _, last = around
    locked = _receipts(first.parent / "locked.jsonl", "c")

    def refusing(path: str, *args: object, **kwargs: object) -> object:
        if path == str(locked):
            raise PermissionError(13, "Permission denied", path)
        return builtins.open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(receipt_files, "open", refusing, raising=False)

    status = _run((first, locked, last), "--format", "json")

    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert status == 1
    assert doc["total"]["calls"] == 2
    assert doc["unread_files"] == [
        {"file": str(locked), "reason": "cannot open: Permission denied"}
    ]
    assert doc["error"] == {"type": "OSError", "message": f"cannot read: {locked}"}
    assert f"error: {locked}: cannot open: Permission denied" in captured.err


def test_nothing_readable_prints_only_the_json_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"

    status = main(["receipts", "report", str(missing), "--format", "json"])

    captured = capsys.readouterr()
    assert status == 2
    assert json.loads(captured.out) == {
        "error": {"type": "UsageError", "message": f"no such file or directory: {missing}"}
    }
    assert f"policyroute receipts report: error: no such file or directory: {missing}" in (
        captured.err
    )
    # Without --format json there are no totals to print: stdout stays empty.
    assert main(["receipts", "report", str(missing)]) == 2
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("target", ["missing", "folder"])
def test_budget_status_json_usage_errors_print_the_error_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    if target == "missing":
        path = tmp_path / "p.yaml"
        expected = f"no such policy file: {path}"
    else:
        path = tmp_path
        expected = f"the policy must be a file; {path} is a directory"

    status = main(["budget", "status", str(path), "--format", "json"])

    captured = capsys.readouterr()
    assert status == 2
    assert json.loads(captured.out) == {"error": {"type": "UsageError", "message": expected}}
    assert f"policyroute budget status: error: {expected}" in captured.err
    assert main(["budget", "status", str(path)]) == 2  # in text, nothing on stdout
    assert capsys.readouterr().out == ""


def test_standard_input_without_dev_stdin_is_a_json_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import policyroute.cli_misc

    monkeypatch.setattr(policyroute.cli_misc, "_STDIN", str(tmp_path / "no-stdin"))

    status = main(["receipts", "report", "-", "--format", "json"])

    error = json.loads(capsys.readouterr().out)["error"]
    assert status == 2
    assert error["type"] == "UsageError"
    assert error["message"].startswith("- (standard input) needs")
