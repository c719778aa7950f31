"""`receipts report --by day` reads the timestamps other tools write the same on every Python.

Receipts written elsewhere may carry ``ts`` with ``Z``, a basic-format offset (``-0500``) or a
fraction of any length. Python 3.10's ``datetime.fromisoformat`` refuses ``Z``, ``-0500`` and
fractions of other than 3 or 6 digits, where 3.11's reads them: a report grouped a record under
the day as written on 3.10 and under its UTC day on 3.11. The timestamp is now read by
policyroute itself, so these run the same on the interpreter at hand as on 3.10.

It also reads ISO 8601's end-of-day ``24:00`` and a leap second ``:60``, valid times that
``datetime`` refuses: ``2026-01-02T24:00:00-05:00`` (05:00 UTC on 3 January) was grouped under
2 January, the day as written, and ``2026-06-30T23:59:60-05:00`` (a leap second, 04:59:60 UTC on
1 July) under 30 June.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main
from policyroute.costs import receipt_json
from policyroute.costs.receipt_json import utc_date

# What Python 3.10's datetime.fromisoformat reads: a fraction of 3 or 6 digits, an offset
# with a colon, no "Z".
_PY310_FORM = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:.\d{2}(?::\d{2}(?::\d{2}(?:\.\d{3}|\.\d{6})?)?)?"
    r"(?:[+-]\d{2}:\d{2}(?::\d{2}(?:\.\d{6})?)?)?)?"
)


class _Py310Datetime(dt.datetime):
    @classmethod
    def fromisoformat(cls, date_string: str) -> Any:
        if not _PY310_FORM.fullmatch(date_string):
            raise ValueError(f"Invalid isoformat string: {date_string!r}")
        return dt.datetime.fromisoformat(date_string)


class _Py310Module:
    """``datetime`` as Python 3.10 has it, for the parts the receipt reader may use."""

    datetime = _Py310Datetime
    timezone = dt.timezone
    timedelta = dt.timedelta
    date = dt.date


# (ts, its UTC day); every one but the first two is one Python 3.10's fromisoformat refuses.
CASES = [
    ("2026-01-02T23:30:00-05:00", "2026-01-03"),
    ("2026-01-02T23:30:00.123456-05:00", "2026-01-03"),
    ("2026-01-02T23:30:00-0500", "2026-01-03"),
    ("2026-01-02T23:30:00.5-0500", "2026-01-03"),
    ("2026-01-02T23:30:00.12-05:00", "2026-01-03"),
    ("2026-01-02T23:30:00.1234-05:00", "2026-01-03"),
    ("2026-01-02T23:30:00.12345-05:00", "2026-01-03"),
    ("2026-01-02T23:30:00.1234567-05:00", "2026-01-03"),
    ("2026-01-03T01:00:00+05:30", "2026-01-02"),
    ("2026-01-03T01:00:00.1+0530", "2026-01-02"),
    ("2026-01-03T01:00:00-05", "2026-01-03"),
    ("2026-01-03T21:00:00+0530", "2026-01-03"),
    ("2026-01-02T23:30:00Z", "2026-01-02"),
    ("2026-01-02T23:30:00.5Z", "2026-01-02"),
    ("2026-01-02 23:30:00.25-05:00", "2026-01-03"),
    ("2026-01-02T23:30-05:00", "2026-01-03"),
    ("2026-01-02T23:30:00,5-05:00", "2026-01-03"),
    ("2026-01-02T23:30:00", "2026-01-02"),  # no offset: taken as UTC
    ("2026-01-02", "2026-01-02"),
]


@pytest.mark.parametrize("python", ["this", "3.10"])
@pytest.mark.parametrize(("ts", "day"), CASES)
def test_the_utc_day_of_each_form(
    ts: str, day: str, python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if python == "3.10":
        monkeypatch.setattr(receipt_json, "dt", _Py310Module)
    assert utc_date(ts) == day


@pytest.mark.parametrize(
    "ts",
    [
        "2026-01-02T25:00:00-05:00",  # no such hour
        "2026-01-02T23:30:00+24:00",  # no such offset
        "2026-01-02T23:30:00-05:00 and more",
        "2026-01-02T23:30:00-5",
    ],
)
def test_a_timestamp_not_read_keeps_its_day_as_written(ts: str) -> None:
    assert utc_date(ts) == "2026-01-02"


def test_not_a_timestamp_has_no_day() -> None:
    assert utc_date("not a time") is None
    assert utc_date("2026-13-45") == "2026-13-45"  # looks like a day: shown as written


# ISO 8601's end of day and leap second, each with the UTC day it falls on.
EDGE_CASES = [
    ("2026-01-02T24:00:00-05:00", "2026-01-03"),
    ("2026-01-02T24:00-0500", "2026-01-03"),
    ("2026-01-02T24:00:00+01:00", "2026-01-02"),
    ("2026-06-30T23:59:60-05:00", "2026-07-01"),
    ("2026-06-30T23:59:60.5+00:30", "2026-06-30"),
    ("2026-01-02T24:30:00-05:00", "2026-01-02"),  # no such time: its day as written
]


@pytest.mark.parametrize("cases", [CASES, EDGE_CASES], ids=["forms", "end-of-day-and-leap"])
def test_report_by_day_groups_every_form_by_its_utc_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cases: list[tuple[str, str]]
) -> None:
    path = tmp_path / "other-tool.jsonl"
    lines = [
        json.dumps({"kind": "call", "request_id": f"r{i}", "cost": "0.1", "ts": ts})
        for i, (ts, _) in enumerate(cases)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["receipts", "report", str(path), "--by", "day", "--format", "json"]) == 0
    days = json.loads(capsys.readouterr().out)["by"]["day"]
    expected: dict[str, int] = {}
    for _, day in cases:
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
