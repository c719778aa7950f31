"""Reports over the receipt files a production user has: other schema versions, cut and
oversized lines, odd amounts, names with commas and newlines, nothing at all."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policyroute.costs import receipt_files
from policyroute.costs.receipts import SCHEMA_VERSION
from policyroute.costs.report import format_report, load_receipts, receipt_problem, summarize

from .helpers import call_receipt


def _write(path: Path, *lines: bytes | dict[str, Any]) -> Path:
    with path.open("wb") as fh:
        for line in lines:
            fh.write(line if isinstance(line, bytes) else json.dumps(line).encode() + b"\n")
    return path


def test_the_reader_knows_the_writers_schema_version() -> None:
    assert receipt_files.NEWEST_SCHEMA_VERSION == SCHEMA_VERSION


def test_a_receipt_from_a_newer_schema_is_skipped_and_named(tmp_path: Path) -> None:
    newer = call_receipt(schema_version=SCHEMA_VERSION + 1, cost="5.000000")
    path = _write(tmp_path / "r.jsonl", call_receipt(), newer, call_receipt(schema_version=None))
    stream = load_receipts([path])
    report = summarize(stream)
    assert report.total.calls == 2  # the current one, and one without a version (older)
    assert str(report.total.cost) == "0.200000"
    assert report.skipped == 1
    (problem,) = report.problems
    assert problem.line == 2
    assert "newer" in problem.message
    assert str(SCHEMA_VERSION + 1) in problem.message


@pytest.mark.parametrize("version", ["1", 1.5, True, -1, 0])
def test_a_schema_version_that_is_not_a_version_is_a_problem(version: object) -> None:
    problem = receipt_problem(call_receipt(schema_version=version))
    assert problem is not None
    assert "schema_version" in problem


@pytest.mark.parametrize(
    ("cost", "ok"),
    [
        ("0.000150", True),
        ("1.5E-7", True),
        (0.25, True),
        ("1_000", False),  # Decimal() reads digit separators; no receipt writes them
        ("0,25", False),
        ("$0.25", False),
        ("-0.10", False),
        ("Infinity", False),
    ],
)
def test_amounts(cost: object, ok: bool) -> None:
    assert (receipt_problem(call_receipt(cost=cost)) is None) is ok


def test_an_amount_in_another_currency_is_not_added_to_dollars() -> None:
    assert receipt_problem(call_receipt(currency="USD")) is None
    problem = receipt_problem(call_receipt(currency="EUR"))
    assert problem is not None
    assert "EUR" in problem
    records = [call_receipt(), call_receipt(currency="EUR", cost="9.0")]
    assert summarize(r for r in records if receipt_problem(r) is None).total.cost == Decimal("0.1")


def test_decimal_strings_sum_exactly_whatever_their_spelling(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "r.jsonl",
        call_receipt(cost="0.1"),
        call_receipt(cost="1E-1"),
        call_receipt(cost=" 0.100000 "),
    )
    assert format_report(summarize(load_receipts([path])), "json").count('"0.300000"') == 1


def test_a_truncated_last_line_and_a_non_json_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "r.jsonl",
        call_receipt(),
        b"this is not json\n",
        call_receipt(),
        json.dumps(call_receipt()).encode()[:40],  # a writer killed mid-line
    )
    stream = load_receipts([path])
    report = summarize(stream)
    assert report.total.calls == 2
    assert report.skipped == 2
    assert [(p.line, p.partial) for p in report.problems] == [(2, False), (4, True)]


def test_empty_input(tmp_path: Path) -> None:
    empty = _write(tmp_path / "empty.jsonl")
    blank = _write(tmp_path / "blank.jsonl", b"\n\n   \n")
    for paths in ([], [empty], [empty, blank]):
        report = summarize(load_receipts(paths), by=["user"])
        assert report.total.calls == 0
        assert report.skipped == 0
        for fmt in ("table", "json", "csv"):
            assert "0.000000" in format_report(report, fmt)  # type: ignore[arg-type]


NASTY = 'acme, inc.\n"quoted" =SUM(A1)'


def test_csv_quotes_commas_newlines_and_quotes_in_names() -> None:
    report = summarize(
        [call_receipt(route=NASTY, user="a,b"), call_receipt(user="c\rd")], by=["route", "user"]
    )
    rows = list(csv.reader(io.StringIO(format_report(report, "csv"), newline="")))
    assert len({len(row) for row in rows}) == 1  # every row has every column
    keys = {(row[0], row[1]) for row in rows[1:]}
    assert ("route", NASTY) in keys
    assert ("user", "a,b") in keys
    assert ("user", "c\rd") in keys  # a lone carriage return is quoted too


@pytest.mark.parametrize("name", ["=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_names_a_spreadsheet_would_run_are_written_as_text(name: str) -> None:
    report = summarize([call_receipt(user=name), call_receipt(user="u-1")], by=["user"])
    rows = list(csv.reader(io.StringIO(format_report(report, "csv"), newline="")))
    assert {row[1] for row in rows[1:] if row[0] == "user"} == {"'" + name, "u-1"}
    # json and the table keep the name as it is
    assert name in json.loads(format_report(report, "json"))["by"]["user"]


def test_table_keeps_one_row_per_group_whatever_the_name_holds() -> None:
    report = summarize([call_receipt(user=NASTY), call_receipt(user="tab\there")], by=["user"])
    lines = format_report(report, "table").splitlines()
    user_rows = lines[lines.index(next(line for line in lines if line.startswith("user"))) + 2 :]
    assert len(user_rows) == 2
    assert any("acme, inc.\\n" in row for row in user_rows)
    assert all("\t" not in row for row in lines)


def test_an_overlong_line_is_skipped_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crash on some file systems leaves a run of NUL bytes with no newline in it: without a
    # bound, it is one "line" as large as the run, read into memory at once.
    monkeypatch.setattr(receipt_files, "MAX_LINE_BYTES", 64 * 1024)
    path = tmp_path / "r.jsonl"
    with path.open("wb") as fh:
        fh.write(json.dumps(call_receipt()).encode() + b"\n")
        fh.write(b"\0" * (16 * 1024 * 1024) + b"\n")
        fh.write(json.dumps(call_receipt()).encode() + b"\n")
    tracemalloc.start()
    try:
        stream = load_receipts([path])
        report = summarize(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.total.calls == 2
    assert report.skipped == 1
    (problem,) = report.problems
    assert problem.line == 2
    assert "longer than" in problem.message
    assert peak < 4 * 1024 * 1024  # a quarter of the run: it was never held whole


def test_many_records_are_summed_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = json.dumps(call_receipt(user="u", route="r")).encode() + b"\n"
    with path.open("wb") as fh:
        for _ in range(20):
            fh.write(line * 1000)
    tracemalloc.start()
    try:
        report = summarize(load_receipts([path]), by=["user", "route", "day"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.total.calls == 20_000
    assert str(report.total.cost) == "2000.000000"
    assert peak < 1024 * 1024  # the file is ~3 MB: records are not kept
