"""`receipts report --by day` reads ISO 8601's end-of-day ``24:00`` and a leap second ``:60``.

Both are valid ISO 8601 times that ``datetime`` refuses: a record stamped
``2026-01-02T24:00:00-05:00`` (05:00 UTC on 3 January) was grouped under 2 January, the day as
written, and ``2026-06-30T23:59:60-05:00`` (a leap second, 04:59:60 UTC on 1 July) under 30 June.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

CASES = [
    ("2026-01-02T24:00:00-05:00", "2026-01-03"),
    ("2026-01-02T24:00-0500", "2026-01-03"),
    ("2026-01-02T24:00:00+01:00", "2026-01-02"),
    ("2026-06-30T23:59:60-05:00", "2026-07-01"),
    ("2026-06-30T23:59:60.5+00:30", "2026-06-30"),
    ("2026-01-02T24:30:00-05:00", "2026-01-02"),  # no such time: its day as written
]


def test_report_by_day_reads_end_of_day_and_leap_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other-tool.jsonl"
    lines = [
        json.dumps({"kind": "call", "request_id": f"r{i}", "cost": "0.1", "ts": ts})
        for i, (ts, _) in enumerate(CASES)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["receipts", "report", str(path), "--by", "day", "--format", "json"]) == 0
    days = json.loads(capsys.readouterr().out)["by"]["day"]
    expected: dict[str, int] = {}
    for _, day in CASES:
        expected[day] = expected.get(day, 0) + 1
    assert {day: row["calls"] for day, row in days.items()} == expected


@pytest.mark.parametrize(
    ("ts", "day"),
    [
        ("2026-01-02T24:00:00Z", "2026-01-03"),
        ("2026-01-02T24:00:00+00:00", "2026-01-03"),
        ("2026-01-02T24:00:00", "2026-01-03"),  # no offset: taken as UTC
        ("2026-01-02T23:59:60", "2026-01-02"),
    ],
)
def test_utc_end_of_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ts: str, day: str
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"kind": "call", "request_id": "r", "cost": "0.1", "ts": ts}) + "\n")
    assert main(["receipts", "report", str(path), "--by", "day", "--format", "json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["by"]["day"]) == [day]
