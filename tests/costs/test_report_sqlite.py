"""Reports over the SQLite receipts database (the policy's ``sink: sqlite``), read as it is:
while its writer still has it open, with a row gone bad, or a database of something else."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from policyroute.costs.report import load_receipts, summarize
from policyroute.costs.sqlite_sink import SqliteSink

from .helpers import call_receipt


def test_a_database_the_sink_still_has_open_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "receipts.sqlite3"
    sink = SqliteSink(path)
    try:
        for user in ("u-1", "u-1", "u-2"):
            sink.write(call_receipt(user=user))
        stream = load_receipts([path])  # the rows are in the write-ahead log yet
        report = summarize(stream, by=["user"])
    finally:
        sink.close()
    assert report.total.calls == 3
    assert str(report.total.cost) == "0.300000"
    assert report.groups["user"]["u-2"].calls == 1
    assert stream.problems == []


def test_a_bad_row_is_named_by_its_id(tmp_path: Path) -> None:
    path = tmp_path / "receipts.sqlite3"
    sink = SqliteSink(path)
    sink.write(call_receipt())
    sink.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO receipts (kind, record) VALUES ('call', 'not json')")
        conn.execute("INSERT INTO receipts (kind, record) VALUES ('call', ?)", (b"\xff{",))
    conn.close()
    stream = load_receipts([path])
    assert summarize(stream).total.calls == 1
    assert [(p.line, p.message.split(" ")[0]) for p in stream.problems] == [(2, "not"), (3, "not")]
    assert stream.skipped == 2


def test_a_database_without_receipts_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "budgets.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE spend (scope TEXT)")
    conn.close()
    stream = load_receipts([path])
    assert summarize(stream).total.calls == 0
    (problem,) = stream.problems
    assert "receipts" in problem.message
    assert not problem.partial


def _untyped_receipts(tmp_path: Path, records: list[Any]) -> Path:
    """A database whose ``receipts`` table (another application's) gives ``record`` no
    type, with ``records`` as its rows 1, 2, ...: SQLite keeps each value as given."""
    path = tmp_path / "receipts.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE receipts (id INTEGER PRIMARY KEY, record)")
        conn.executemany(
            "INSERT INTO receipts (id, record) VALUES (?, ?)",
            list(enumerate(records, start=1)),
        )
    conn.close()
    return path


def test_a_record_that_is_a_number_is_named_by_its_row_not_a_crash(tmp_path: Path) -> None:
    # Another application's table named receipts, its record column without a type: SQLite
    # keeps a number there as a number. A float ended the report with a TypeError.
    good = json.dumps(call_receipt(request_id="r-1"))
    path = _untyped_receipts(tmp_path, [good, 1.5, 7, good.replace("r-1", "r-2")])
    stream = load_receipts([path])
    assert summarize(stream).total.calls == 2
    assert [(p.line, p.message) for p in stream.problems] == [
        (2, "the record is a number (1.5), not a receipt's JSON text"),
        (3, "the record is a number (7), not a receipt's JSON text"),
    ]
    assert stream.skipped == 2


def test_a_null_or_empty_record_is_named_by_its_row(tmp_path: Path) -> None:
    # A blank line between JSON lines is nothing; a row without its receipt is a receipt lost.
    good = json.dumps(call_receipt(request_id="r-1"))
    path = _untyped_receipts(tmp_path, [good, None, "", "  \n", good.replace("r-1", "r-2")])
    stream = load_receipts([path])
    assert summarize(stream).total.calls == 2
    assert [(p.line, p.message) for p in stream.problems] == [
        (2, "the record is NULL, not a receipt's JSON text"),
        (3, "the record is empty, not a receipt's JSON text"),
        (4, "the record is empty, not a receipt's JSON text"),
    ]
    assert stream.skipped == 3
    assert stream.error_count == 3
