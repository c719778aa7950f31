"""``summarize`` counts each receipt once, whatever iterable the records come in.

The rule is ``policyroute receipts report``'s (:mod:`policyroute.costs.receipt_identity`): an
exact copy is dropped and counted in ``duplicates``; a record with a seen identity and other
content is left out, counted in ``conflicts`` and named among the problems; a record without an
identity is always added.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policyroute.costs.receipt_files import MAX_PROBLEMS
from policyroute.costs.report import RECORDS, format_report, load_receipts, summarize

from .helpers import call_receipt


def _call(request_id: str | None, cost: str = "0.100000", **fields: Any) -> dict[str, Any]:
    record = call_receipt(request_id=request_id, cost=cost, model="a/m", **fields)
    if request_id is None:
        del record["request_id"]
    return record


def _attempt(request_id: str, number: int, cost: str) -> dict[str, Any]:
    return {**_call(request_id, cost), "kind": "attempt", "attempt": number, "budgets": []}


def _fell_over(request_id: str) -> list[dict[str, Any]]:
    """A call whose first attempt failed over to a second: 0.04 + 0.06 = 0.10."""
    return [
        _attempt(request_id, 1, "0.040000"),
        _attempt(request_id, 2, "0.060000"),
        _call(request_id, "0.100000", attempts=2),
    ]


def test_copies_in_a_list_are_added_up_once() -> None:
    first, second = _fell_over("req-1"), _fell_over("req-2")
    records = first + second + [dict(r) for r in first]  # an overlap, as copies

    report = summarize(records, by=["model"])

    assert (report.total.calls, report.total.attempts) == (2, 4)
    assert report.total.cost == Decimal("0.200000")
    assert report.total.attempt_cost == Decimal("0.200000")
    assert report.groups["model"]["a/m"].cost == Decimal("0.200000")
    assert (report.duplicates, report.conflicts, report.problems) == (3, 0, ())


def test_a_copy_with_keys_in_another_order_is_still_a_copy() -> None:
    call = _call("req-1")
    reordered = dict(reversed(list(call.items())))

    report = summarize([call, reordered])

    assert (report.total.calls, report.duplicates) == (1, 1)


def test_a_conflicting_record_is_left_out_and_named_where_it_is() -> None:
    records = [_call("req-1", "0.100000"), _call("req-2"), _call("req-1", "0.900000")]

    report = summarize(records)

    assert report.total.cost == Decimal("0.200000")  # the first req-1 counts
    assert (report.total.calls, report.duplicates, report.conflicts) == (2, 0, 1)
    [problem] = report.problems
    assert (problem.file, problem.line, problem.partial) == (RECORDS, 3, False)
    assert "request 'req-1'" in problem.message
    assert problem.format().startswith("<records>:3: the call receipt of request 'req-1'")


def test_records_without_an_identity_are_always_added() -> None:
    bare = _call(None, "0.100000")
    attempt_without_number = {**_call("req-1", "0.050000"), "kind": "attempt"}

    report = summarize([bare, dict(bare), attempt_without_number, dict(attempt_without_number)])

    assert (report.total.calls, report.total.attempts) == (2, 2)
    assert report.total.cost == Decimal("0.200000")
    assert report.duplicates == 0


def test_a_generator_is_read_once_and_deduplicated() -> None:
    records = _fell_over("req-1")

    report = summarize(r for r in records + records)

    assert (report.total.calls, report.total.attempts, report.duplicates) == (1, 2, 3)


def test_dedupe_false_adds_up_every_record_given() -> None:
    records = _fell_over("req-1") * 2

    report = summarize(records, dedupe=False)

    assert (report.total.calls, report.total.attempts) == (2, 4)
    assert report.total.cost == Decimal("0.200000")
    assert (report.duplicates, report.conflicts) == (0, 0)


def test_a_stream_keeps_its_own_counts_and_its_own_choice(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _fell_over("req-1") * 2))

    deduplicated = summarize(load_receipts([path]))
    assert (deduplicated.total.calls, deduplicated.duplicates) == (1, 3)

    # A stream asked not to deduplicate yields every record; summarize takes them as given.
    every = summarize(load_receipts([path], dedupe=False))
    assert (every.total.calls, every.total.attempts, every.duplicates) == (2, 4, 0)


def test_problems_past_the_limit_are_counted_not_listed() -> None:
    firsts = [_call(f"req-{i}", "0.100000") for i in range(MAX_PROBLEMS + 2)]
    others = [_call(f"req-{i}", "0.200000") for i in range(MAX_PROBLEMS + 2)]

    report = summarize(firsts + others)

    assert report.conflicts == MAX_PROBLEMS + 2
    assert len(report.problems) == MAX_PROBLEMS
    assert report.problems_left_out == 2
    assert report.problems[0].line == MAX_PROBLEMS + 3


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_the_rendered_report_says_what_was_dropped(fmt: Any) -> None:
    records = [_call("req-1"), _call("req-1"), _call("req-1", "0.500000")]

    text = format_report(summarize(records), fmt)

    if fmt == "json":
        data = json.loads(text)
        assert (data["duplicate_receipts"], data["conflicting_receipts"]) == (1, 1)
        assert data["problems"][0]["file"] == RECORDS
    else:
        assert "1 duplicate receipt(s) read more than once, counted once" in text
        assert "1 conflicting receipt(s) left out" in text
