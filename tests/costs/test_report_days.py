"""``--by day`` and the JSON-lines sink's ``{date}`` are UTC days, whatever offset a
timestamp was written with (receipts imported from elsewhere, records a caller wrote)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policyroute.costs.jsonl_sink import JsonlSink
from policyroute.costs.receipt_json import utc_date
from policyroute.costs.report import summarize


@pytest.mark.parametrize(
    ("ts", "day"),
    [
        ("2026-01-02T03:04:05.000+00:00", "2026-01-02"),
        ("2026-01-02T23:30:00Z", "2026-01-02"),
        ("2026-01-02T23:30:00-05:00", "2026-01-03"),  # 04:30 UTC the next day
        ("2026-01-03T01:00:00.250+02:00", "2026-01-02"),  # 23:00 UTC the day before
        ("2026-01-02T03:04:05", "2026-01-02"),  # no offset: taken as UTC
        ("2026-01-02", "2026-01-02"),
        ("not a time", None),
        ("", None),
    ],
)
def test_utc_date(ts: str, day: str | None) -> None:
    assert utc_date(ts) == day


def _call(ts: str) -> dict[str, Any]:
    return {"kind": "call", "status": "ok", "cost": "0.100000", "ts": ts}


def test_by_day_groups_by_the_utc_day() -> None:
    records = [
        _call("2026-01-02T23:30:00-05:00"),
        _call("2026-01-03T05:00:00+00:00"),
        _call("2026-01-03T01:00:00+02:00"),
    ]
    days = summarize(records, by=["day"]).groups["day"]
    assert {day: t.calls for day, t in days.items()} == {"2026-01-02": 1, "2026-01-03": 2}


def test_the_sinks_date_is_the_utc_day(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "{date}.jsonl")
    assert sink.path_for(_call("2026-01-02T23:30:00-05:00")).name == "2026-01-03.jsonl"
    sink.close()
