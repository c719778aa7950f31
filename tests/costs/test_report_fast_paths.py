"""The report's shortcuts for well-formed receipts add up and judge exactly what the general
reading does, on everything unusual a receipt may hold."""

from __future__ import annotations

import enum
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policyroute.costs.receipt_checks import _problem, parse_amount, receipt_problem
from policyroute.costs.receipt_identity import ReceiptDeduplicator
from policyroute.costs.report import Totals, format_report, load_receipts, summarize


class _Count(enum.IntEnum):
    SEVEN = 7


class _Name(str):
    pass


_BASE: dict[str, Any] = {
    "schema_version": 1,
    "kind": "attempt",
    "request_id": "r1",
    "attempt": 1,
    "ts": "2026-01-02T03:04:05.000+00:00",
    "route": "default",
    "user": "u1",
    "cost": "0.000150",
    "input_tokens": 10,
    "output_tokens": 5,
    "status": "ok",
    "budgets": [{"budget": "daily"}],
}

_ODD_FIELDS: list[tuple[str, Any]] = [
    ("kind", "call"),
    ("kind", _Name("call")),
    ("kind", "budget"),
    ("kind", 3),
    ("kind", None),
    ("schema_version", 0),
    ("schema_version", 2),
    ("schema_version", True),
    ("schema_version", 1.0),
    ("schema_version", None),
    ("currency", "EUR"),
    ("currency", "USD"),
    ("currency", None),
    ("cost", 0.5),
    ("cost", 3),
    ("cost", True),
    ("cost", Decimal("0.5")),
    ("cost", "-0.1"),
    ("cost", "1e12"),
    ("cost", "1_000"),
    ("cost", " 0.5 "),
    ("cost", "NaN"),
    ("cost", "Infinity"),
    ("cost", _Name("0.5")),
    ("cost", ""),
    ("cost", None),
    ("input_tokens", True),
    ("input_tokens", -1),
    ("input_tokens", "12"),
    ("input_tokens", 1.0),
    ("input_tokens", _Count.SEVEN),
    ("input_tokens", None),
    ("reasoning_tokens", 2**70),
    ("ts", 5),
    ("ts", None),
    ("status", False),
    ("budgets", None),
    ("budgets", {"budget": "daily"}),
    ("budgets", ["daily"]),
    ("budgets", []),
    ("budgets", ({"budget": "daily"},)),
]


@pytest.mark.parametrize(("name", "value"), _ODD_FIELDS)
def test_the_quick_check_agrees_with_the_full_one(name: str, value: Any) -> None:
    record = {**_BASE, name: value}
    assert receipt_problem(record) == _problem(record)


def test_a_missing_field_is_judged_as_the_full_check_judges_it() -> None:
    for name in _BASE:
        record = {k: v for k, v in _BASE.items() if k != name}
        assert receipt_problem(record) == _problem(record), name


@pytest.mark.parametrize(
    "value", ["0.5", " 0.5\n", "1_0", _Name("1_0"), _Name("0.25"), 2, 0.1, True, None, "x"]
)
def test_amounts_read_as_before(value: Any) -> None:
    expected = None
    plain = not isinstance(value, bool) and isinstance(value, (str, int, float))
    if plain and not (isinstance(value, str) and "_" in value):
        try:
            amount = Decimal(str(value).strip())
            expected = amount if amount.is_finite() else None
        except ArithmeticError:
            expected = None
    assert parse_amount(value) == expected


def test_odd_token_counts_add_up_as_add_tokens_reads_them() -> None:
    records: list[dict[str, Any]] = [
        {"kind": "call", "input_tokens": 5, "output_tokens": True, "cache_read_tokens": 2},
        {"kind": "call", "input_tokens": _Count.SEVEN, "cache_write_tokens": "9"},
        {"kind": "call", "input_tokens": 1.0, "reasoning_tokens": 4},
    ]
    report = summarize(records, by=["route"])
    expected = Totals()
    for record in records:
        expected.add_tokens(record)
    for totals in (report.total, report.groups["route"]["(none)"]):
        assert (totals.input_tokens, totals.output_tokens) == (12, 0)
        assert (totals.cache_read_tokens, totals.cache_write_tokens) == (2, 0)
        assert totals.reasoning_tokens == 4
        assert (totals.input_tokens, totals.reasoning_tokens) == (
            expected.input_tokens,
            expected.reasoning_tokens,
        )


def test_names_of_every_kind_group_as_before() -> None:
    call: dict[str, Any] = {"kind": "call", "cost": "0.1", "status": "ok"}
    records = [
        {**call, "user": "plain"},
        {**call, "user": "café"},
        {**call, "user": "caf\udce9"},  # a lone surrogate: spelled as the writers spell it
        {**call, "user": "caf\\udce9"},  # ... so it groups with that spelling
        {**call, "user": ""},
        {**call, "user": None},
        {**call, "user": 42},
        {**call, "user": _Name("plain")},
        {**call, "user": ["a", "b"]},
    ]
    users = summarize(records, by=["user"]).groups["user"]
    assert {key: t.calls for key, t in users.items()} == {
        "plain": 2,
        "café": 1,
        "caf\\udce9": 2,
        "(none)": 2,
        "42": 1,
        "['a', 'b']": 1,
    }


def test_an_attempt_naming_a_budget_twice_counts_there_once() -> None:
    # (a per-tags budget charges a line per tag, and the receipt names each)
    attempt = {
        "kind": "attempt",
        "request_id": "r1",
        "attempt": 1,
        "cost": "0.2",
        "input_tokens": 3,
        "budgets": [{"budget": "daily"}, {"budget": "daily"}, {"budget": 7}, "not an object"],
    }
    groups = summarize([attempt], by=["budget"]).groups["budget"]
    assert (groups["daily"].attempts, groups["daily"].calls) == (1, 1)
    assert groups["daily"].cost == Decimal("0.2")
    assert groups["daily"].input_tokens == 3
    assert (groups["7"].attempts, groups["7"].calls, groups["7"].cost) == (1, 1, Decimal("0.2"))


def test_a_file_of_odd_lines_reports_as_before(tmp_path: Path) -> None:
    good = {**_BASE, "user": "ünï", "metadata": {"b": 1, "a": [1.5, None]}}
    reordered = dict(reversed(list(good.items())))
    lines = [
        json.dumps(good),
        json.dumps(reordered, ensure_ascii=False, indent=1).replace("\n", " "),  # a copy
        json.dumps({**good, "cost": "0.9"}),  # a conflict
        json.dumps({**good, "request_id": "r2", "input_tokens": True}),  # a bad field
        json.dumps({**good, "request_id": "r3", "kind": "call", "budgets": None}),
        json.dumps({**good, "request_id": "r4", "schema_version": 9}),
        "[1, 2]",
        "{not json",
        json.dumps({**good, "request_id": "r5"})[:40],  # cut: no newline
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    stream = load_receipts([path])
    report = summarize(stream, by=["user", "budget", "day"])
    data = json.loads(format_report(report, "json"))
    assert data["total"] == {
        "calls": 1,
        "attempts": 1,
        "errors": 0,
        "refused": 0,
        "cache_hits": 0,
        "cost": "0.000150",
        "attempt_cost": "0.000150",
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert sorted(data["by"]["user"]) == ["ünï"]
    assert data["by"]["budget"]["daily"]["calls"] == 1
    assert (data["duplicate_receipts"], data["conflicting_receipts"]) == (1, 1)
    assert [(p["line"], p["partial"]) for p in data["problems"]] == [
        (3, False),
        (4, False),
        (6, False),
        (7, False),
        (8, False),
        (9, True),
    ]
    assert (
        data["problems"][1]["message"] == "'input_tokens' must be a whole number, got boolean True"
    )
    assert stream.skipped == 5


def test_a_reader_s_deduplicator_tells_copies_apart_as_the_general_one_does() -> None:
    record = {**_BASE, "metadata": {"b": "é", "a": [1, 1.0, True, None]}}
    variants = [
        record,
        json.loads(json.dumps(dict(reversed(list(record.items()))), ensure_ascii=False)),
        {**record, "metadata": {"a": [1, 1.0, True, None], "b": "é"}},
        {**record, "metadata": {"b": "é", "a": [1.0, 1, True, None]}},
        {**record, "input_tokens": 10.0},
        {**record, "attempt": 2},
    ]
    general, parsed = ReceiptDeduplicator(), ReceiptDeduplicator(parsed=True)
    found = [general.check(v) for v in variants]
    assert found == ["new", "duplicate", "duplicate", "conflict", "conflict", "new"]
    assert [parsed.check(v) for v in variants] == found
