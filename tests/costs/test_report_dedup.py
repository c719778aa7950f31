"""Each receipt counts once: copies read from overlapping inputs are dropped and counted, and a
record with a seen identity but other content is a conflict, left out and named."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

from policyroute.costs.receipt_identity import ReceiptDeduplicator, receipt_identity
from policyroute.costs.report import format_report, load_receipts, summarize
from policyroute.costs.sinks import JsonlSink
from policyroute.costs.sqlite_sink import SqliteSink

from .helpers import call_receipt


def _call(request_id: str, cost: str = "0.100000", **fields: Any) -> dict[str, Any]:
    return call_receipt(request_id=request_id, cost=cost, model="a/m", **fields)


def _attempt(request_id: str, number: int, cost: str = "0.100000") -> dict[str, Any]:
    return {**_call(request_id, cost), "kind": "attempt", "attempt": number, "budgets": []}


def _call_with_attempts(request_id: str) -> list[dict[str, Any]]:
    """A call that fell over once: two attempts (0.04 + 0.06) and the call (0.10)."""
    return [
        _attempt(request_id, 1, "0.040000"),
        _attempt(request_id, 2, "0.060000"),
        _call(request_id, "0.100000", attempts=2),
    ]


def _lines(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    data = _lines(records)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def test_a_rotated_file_overlapping_the_live_one_is_counted_once(tmp_path: Path) -> None:
    first, second, third = (_call_with_attempts(f"req-{i}") for i in range(3))
    live = _write(tmp_path / "receipts.jsonl", first + second + third)
    rotated = _write(tmp_path / "receipts.jsonl.1.gz", first + second)
    stream = load_receipts([rotated, live])
    report = summarize(stream, by=["model"])
    assert (report.total.calls, report.total.attempts) == (3, 6)
    assert report.total.cost == Decimal("0.300000")
    assert report.total.attempt_cost == Decimal("0.300000")
    assert report.groups["model"]["a/m"].cost == Decimal("0.300000")
    assert (report.duplicates, report.conflicts) == (6, 0)
    assert stream.read == 9
    assert stream.problems == []
    assert stream.error_count == 0


def test_the_jsonl_file_and_the_sqlite_database_of_one_writer_count_once(
    tmp_path: Path,
) -> None:
    jsonl = JsonlSink(tmp_path / "receipts.jsonl")
    database = SqliteSink(tmp_path / "receipts.sqlite3")
    for record in _call_with_attempts("req-1") + _call_with_attempts("req-2"):
        jsonl.write(record)
        database.write(record)
    jsonl.close()
    database.close()
    report = summarize(load_receipts([tmp_path / "receipts.jsonl", tmp_path / "receipts.sqlite3"]))
    assert (report.total.calls, report.total.attempts) == (2, 4)
    assert report.total.cost == Decimal("0.200000")
    assert report.duplicates == 6


def test_a_copy_with_its_keys_in_another_order_is_a_duplicate(tmp_path: Path) -> None:
    record = _call("req-1")
    reordered = dict(reversed(list(record.items())))
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(reordered, indent=None) + "\n")
    report = summarize(load_receipts([path]))
    assert (report.total.calls, report.duplicates, report.conflicts) == (1, 1, 0)


def test_same_identity_other_content_is_a_conflict_and_the_first_read_counts(
    tmp_path: Path,
) -> None:
    a = _write(tmp_path / "a.jsonl", [_call("req-1", "0.100000"), _call("req-2")])
    b = _write(tmp_path / "b.jsonl", [_call("req-2"), _call("req-1", "0.900000")])
    stream = load_receipts([a, b])
    report = summarize(stream)
    assert report.total.calls == 2
    assert report.total.cost == Decimal("0.200000")
    assert (report.duplicates, report.conflicts) == (1, 1)
    [problem] = stream.problems
    assert (problem.file, problem.line, problem.partial) == (str(b), 2, False)
    assert problem.message == (
        "the call receipt of request 'req-1' was read before with other content:"
        " this copy is left out (the first one read counts)"
    )
    assert stream.error_count == 1  # the totals may be off: the CLI exits 1
    # Read in the other order, the other copy counts.
    assert summarize(load_receipts([b, a])).total.cost == Decimal("1.000000")


def test_a_conflicting_attempt_is_named_with_its_number(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", [_attempt("req-1", 2), _attempt("req-1", 2, "0.5")])
    stream = load_receipts([path])
    report = summarize(stream)
    assert (report.total.attempts, report.conflicts) == (1, 1)
    assert stream.problems[0].message.startswith("the receipt of attempt 2 of request 'req-1'")


def test_attempts_and_the_call_of_one_request_are_different_receipts(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", _call_with_attempts("req-1"))
    report = summarize(load_receipts([path]))
    assert (report.total.calls, report.total.attempts, report.duplicates) == (1, 2, 0)


def test_records_without_an_identity_are_all_counted(tmp_path: Path) -> None:
    # Without a request id (or an attempt without its number, as a bare receipt whose
    # building failed is) nothing tells two receipts apart from one read twice.
    anonymous = call_receipt()
    bare_attempt = {**_attempt("req-1", 1), "attempt": None}
    path = _write(tmp_path / "r.jsonl", [anonymous, anonymous, bare_attempt, bare_attempt])
    report = summarize(load_receipts([path]))
    assert (report.total.calls, report.total.attempts) == (2, 2)
    assert report.duplicates == 0


def test_dedupe_false_counts_every_record_read(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.jsonl", [_call("req-1"), _call("req-1"), _call("req-1", "0.2")])
    stream = load_receipts([path], dedupe=False)
    report = summarize(stream)
    assert (report.total.calls, report.duplicates, report.conflicts) == (3, 0, 0)
    assert stream.problems == []


def test_the_json_and_table_formats_say_what_was_dropped(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "r.jsonl",
        [_call("req-1"), _call("req-1"), _call("req-1"), _call("req-1", "0.3")],
    )
    report = summarize(load_receipts([path]))
    data = json.loads(format_report(report, "json"))
    assert data["duplicate_receipts"] == 2
    assert data["conflicting_receipts"] == 1
    assert data["total"]["cost"] == "0.100000"
    assert data["problems"][0]["line"] == 4
    footer = format_report(report, "table").splitlines()[-2:]
    assert footer == [
        "2 duplicate receipt(s) read more than once, counted once",
        "1 conflicting receipt(s) left out: same identity as one read before, other content"
        " (the first one read counts)",
    ]


def test_a_report_without_copies_has_no_footer() -> None:
    text = format_report(summarize([_call("req-1")]), "table")
    assert "duplicate" not in text
    assert "conflicting" not in text


def test_identity_is_kind_request_and_attempt_number() -> None:
    assert receipt_identity(_call("r")) == ("call", "r", None)
    assert receipt_identity(_attempt("r", 3)) == ("attempt", "r", 3)
    assert receipt_identity({"kind": "attempt", "request_id": "r", "attempt": True}) is None
    assert receipt_identity({"kind": "call", "request_id": 7}) is None
    assert receipt_identity({"kind": "budget", "request_id": "r"}) is None


def test_the_deduplicator_keeps_digests_not_records() -> None:
    # Each record carries 2 kB of prompt; what is remembered per receipt stays ~126 bytes
    # (the module docstring's figure, measured on a million identities).
    # The records are made while traced, so that keeping one would show.
    prompt = "x" * 2048
    seen = ReceiptDeduplicator()
    tracemalloc.start()
    try:
        for i in range(2000):
            assert seen.check({**_call(f"req-{i}"), "prompt": prompt + str(i)}) == "new"
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(seen) == 2000
    assert held / 2000 < 200
