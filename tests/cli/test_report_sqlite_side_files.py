"""``policyroute receipts report receipts.sqlite3*``: a glob that names the SQLite sink's
database also names SQLite's own files beside it (its write-ahead log and shared-memory file),
binary files that were read as a thousand bad receipt lines. They are passed over, with a
warning, when the database is named too, and an error says to name it when it is not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main
from policyroute.costs.sqlite_sink import SqliteSink


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "receipts.sqlite3"
    sink = SqliteSink(path)
    for number in range(20):
        sink.write(
            {
                "schema_version": 1,
                "kind": "call",
                "request_id": f"r{number}",
                "ts": "2026-01-02T03:04:05.000+00:00",
                "status": "ok",
                "cost": "0.100000",
            }
        )
    try:
        # open, as in a running service: the write-ahead log holds the receipts
        assert (tmp_path / "receipts.sqlite3-wal").stat().st_size > 0
        yield path
    finally:
        sink.close()


def _report(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, Any, str]:
    status = main(["receipts", "report", *map(str, paths), "--format", "json"])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def test_the_database_and_its_side_files_report_the_database(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    side = sorted(database.parent.glob("receipts.sqlite3-*"))
    assert [p.name for p in side] == ["receipts.sqlite3-shm", "receipts.sqlite3-wal"]

    status, report, err = _report(capsys, database, *side)

    assert status == 0, err
    assert (report["total"]["calls"], report["total"]["cost"]) == (20, "2.000000")
    assert [(p["file"], p["partial"]) for p in report["problems"]] == [
        (str(path), True) for path in side
    ]
    assert f"warning: {side[1]}: SQLite's write-ahead log of {database}, which is read" in err
    assert "not JSON" not in err
    assert "not UTF-8" not in err


def test_a_side_file_alone_says_to_name_the_database(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wal = database.parent / "receipts.sqlite3-wal"

    status, report, err = _report(capsys, wal)

    assert status == 1
    assert report["total"]["calls"] == 0
    assert f"error: {wal}: SQLite's write-ahead log of {database}, not a receipts file" in err
    assert f"name {database}" in err
