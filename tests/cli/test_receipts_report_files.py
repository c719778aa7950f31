"""`policyroute receipts report` over the files a shell hands it: the same file twice, the
SQLite sink's database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

CALL = {
    "kind": "call",
    "status": "ok",
    "cost": "0.25",
    "model": "m",
    "ts": "2026-01-02T03:04:05.000+00:00",
}


def test_a_file_named_twice_is_read_once_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(CALL) + "\n", encoding="utf-8")
    again = str(tmp_path / "." / "r.jsonl")
    assert main(["receipts", "report", str(path), again, "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["total"]["cost"] == "0.250000"
    assert f"note: {again} is the same file as {path}: read once" in captured.err


def test_the_sqlite_sinks_database_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from policyroute.costs.sqlite_sink import SqliteSink

    path = tmp_path / "receipts.sqlite3"
    sink = SqliteSink(path)
    sink.write(CALL)
    sink.close()
    assert main(["receipts", "report", str(path), "--by", "model", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "total,all,1,0,0,0.250000," in captured.out
    assert captured.err == ""


def test_an_error_past_the_kept_problems_sets_the_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from policyroute.costs import receipt_files

    monkeypatch.setattr(receipt_files, "MAX_PROBLEMS", 2)
    path = tmp_path / "r.jsonl"
    cut = json.dumps(CALL)[:20].encode()
    path.write_bytes((cut + json.dumps({"schema_version": 1, **CALL}).encode() + b"\n") * 3)
    with path.open("ab") as fh:
        fh.write(b"not json\n")
    assert main(["receipts", "report", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("warning:") == 2
    assert "... and 2 more bad line(s)" in err
