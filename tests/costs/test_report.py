"""Spend reports: exact decimal sums by day, model, user, budget; table, JSON and CSV."""

from __future__ import annotations

import csv
import functools
import io
import json
import operator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policyroute.costs.report import format_report, load_receipts, summarize
from policyroute.costs.sinks import JsonlSink


def _attempt(ts: str, model: str, cost: str, *, user: str, status: str = "ok") -> dict[str, Any]:
    provider = model.split("/")[0]
    return {
        "kind": "attempt",
        "ts": ts,
        "model": model,
        "provider": provider,
        "deployment": model.split("/")[1],
        "route": "default",
        "user": user,
        "cost": cost,
        "status": status,
        "input_tokens": 100,
        "output_tokens": 10,
        "budgets": [{"budget": "per-user-daily", "scope": user}],
    }


def _call(ts: str, model: str, cost: str, *, user: str, attempts: int = 1) -> dict[str, Any]:
    return {
        "kind": "call",
        "ts": ts,
        "model": model,
        "provider": model.split("/")[0],
        "deployment": model.split("/")[1],
        "route": "default",
        "user": user,
        "cost": cost,
        "status": "ok",
        "attempts": attempts,
        "input_tokens": 100 * attempts,
        "output_tokens": 10,
    }


# Three calls over two days; the second fell over from sonnet (billed input) to mini.
RECORDS = [
    _attempt("2026-01-01T10:00:00+00:00", "openai/gpt-4o-mini", "0.100000", user="alice"),
    _call("2026-01-01T10:00:00+00:00", "openai/gpt-4o-mini", "0.100000", user="alice"),
    _attempt(
        "2026-01-01T23:59:59+00:00",
        "anthropic/claude-sonnet",
        "0.200000",
        user="bob",
        status="error",
    ),
    _attempt("2026-01-01T23:59:59+00:00", "openai/gpt-4o-mini", "0.000001", user="bob"),
    _call("2026-01-01T23:59:59+00:00", "openai/gpt-4o-mini", "0.200001", user="bob", attempts=2),
    _attempt("2026-01-02T00:00:01+00:00", "openai/gpt-4o-mini", "0.300000", user="alice"),
    _call("2026-01-02T00:00:01+00:00", "openai/gpt-4o-mini", "0.300000", user="alice"),
]


def test_totals_come_from_call_receipts() -> None:
    report = summarize(RECORDS, by=[])
    assert report.total.calls == 3
    assert report.total.attempts == 4
    assert report.total.cost == Decimal("0.600001")
    assert report.total.attempt_cost == Decimal("0.600001")
    assert report.total.input_tokens == 400


def test_by_day_user_and_model() -> None:
    report = summarize(RECORDS, by=["day", "user", "model", "budget"])
    day = report.groups["day"]
    assert {k: (v.calls, v.cost) for k, v in day.items()} == {
        "2026-01-01": (2, Decimal("0.300001")),
        "2026-01-02": (1, Decimal("0.300000")),
    }
    user = report.groups["user"]
    assert {k: (v.calls, v.attempts, v.cost) for k, v in user.items()} == {
        "alice": (2, 2, Decimal("0.400000")),
        "bob": (1, 2, Decimal("0.200001")),
    }
    # Money by model comes from attempts: the failed sonnet attempt cost sonnet, not mini.
    model = report.groups["model"]
    assert model["anthropic/claude-sonnet"].cost == Decimal("0.200000")
    assert model["anthropic/claude-sonnet"].calls == 0
    assert model["anthropic/claude-sonnet"].attempts == 1
    assert model["openai/gpt-4o-mini"].cost == Decimal("0.400001")
    assert model["openai/gpt-4o-mini"].calls == 3
    budget = report.groups["budget"]["per-user-daily"]
    assert (budget.attempts, budget.cost) == (4, Decimal("0.600001"))


def test_many_small_costs_sum_without_drift() -> None:
    records = [_call("2026-01-01T00:00:00Z", "a/b", "0.100000", user="u") for _ in range(1000)]
    assert summarize(records).total.cost == Decimal("100")
    # What a running float total would have said (sum() compensates for rounding since 3.12).
    assert functools.reduce(operator.add, [0.1] * 1000) != 100


def test_unknown_dimension_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown report dimension"):
        summarize(RECORDS, by=["colour"])


def test_csv_output() -> None:
    text = format_report(summarize(RECORDS, by=["day"]), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["dimension"], r["key"], r["cost"]) for r in rows] == [
        ("total", "all", "0.600001"),
        ("day", "2026-01-01", "0.300001"),
        ("day", "2026-01-02", "0.300000"),
    ]
    assert rows[0]["calls"] == "3"
    assert rows[0]["attempts"] == "4"


def test_json_output() -> None:
    data = json.loads(format_report(summarize(RECORDS, by=["user"]), "json"))
    assert data["total"]["cost"] == "0.600001"
    assert data["by"]["user"]["bob"]["cost"] == "0.200001"
    assert data["skipped_lines"] == 0


def test_table_output() -> None:
    text = format_report(summarize(RECORDS, by=["model"]), "table")
    lines = text.splitlines()
    assert lines[0].split() == [
        "total",
        "calls",
        "attempts",
        "errors",
        "cost",
        "input_tokens",
        "output_tokens",
        "refused",
        "cache_hits",
    ]
    assert lines[2].split() == ["all", "3", "4", "0", "0.600001", "400", "30", "0", "0"]
    assert any(line.split()[:2] == ["anthropic/claude-sonnet", "0"] for line in lines)


def test_report_from_files_counts_skipped_lines(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "{date}.jsonl")
    for record in RECORDS:
        sink.write(record)
    sink.close()
    day2 = tmp_path / "2026-01-02.jsonl"
    with day2.open("ab") as fh:
        fh.write(b'{"kind":"call","cost":"9')  # a writer killed mid-line
    stream = load_receipts(sorted(tmp_path.glob("*.jsonl")))
    report = summarize(stream, by=["day"])
    assert report.total.cost == Decimal("0.600001")
    assert report.skipped == 1
    assert "1 malformed or partial line(s) skipped" in format_report(report)
