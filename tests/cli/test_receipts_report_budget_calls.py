"""`policyroute receipts report --by budget` counts the calls each budget was charged by.

Only attempt receipts name the budgets they charged, so every budget showed ``calls 0``.
A budget's ``calls`` is now the number of distinct calls (request ids) with an attempt that
charged it, in every format; the totals and the other breakdowns keep their counts.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main


def _attempt(
    request_id: str, number: int, budgets: list[str], status: str = "ok"
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": "attempt",
        "request_id": request_id,
        "attempt": number,
        "ts": "2026-01-02T03:04:05.000+00:00",
        "model": "openai/gpt-4o-mini",
        "route": "default",
        "status": status,
        "cost": "0.100000",
        "budgets": [{"budget": name, "scope": None} for name in budgets],
    }


def _call(request_id: str, attempts: int) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": "call",
        "request_id": request_id,
        "ts": "2026-01-02T03:04:05.000+00:00",
        "model": "openai/gpt-4o-mini",
        "route": "default",
        "status": "ok",
        "attempts": attempts,
        "cost": f"{0.1 * attempts:.6f}",
    }


# r1 charges both budgets once; r2 retried, charging `daily` twice; r3 charges none.
RECORDS = [
    _attempt("r1", 1, ["daily", "per-user"]),
    _call("r1", 1),
    _attempt("r2", 1, ["daily"], status="error"),
    _attempt("r2", 2, ["daily"]),
    _call("r2", 2),
    _attempt("r3", 1, []),
    _call("r3", 1),
]


@pytest.fixture
def receipts(tmp_path: Path) -> Path:
    path = tmp_path / "receipts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    return path


def _report(receipts: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["receipts", "report", str(receipts), "--by", "budget", *args]) == 0
    return capsys.readouterr().out


def test_json_counts_each_call_once_per_budget_it_charged(
    receipts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(_report(receipts, capsys, "--format", "json"))
    budgets = data["by"]["budget"]
    assert {k: (v["calls"], v["attempts"], v["cost"]) for k, v in budgets.items()} == {
        "daily": (2, 3, "0.300000"),
        "per-user": (1, 1, "0.100000"),
        "(none)": (1, 1, "0.100000"),
    }
    assert (data["total"]["calls"], data["total"]["attempts"]) == (3, 4)
    assert data["total"]["cost"] == "0.400000"


def test_csv_and_table_show_the_same_calls(
    receipts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = list(csv.DictReader(io.StringIO(_report(receipts, capsys, "--format", "csv"))))
    assert [(r["dimension"], r["key"], r["calls"], r["attempts"]) for r in rows] == [
        ("total", "all", "3", "4"),
        ("budget", "(none)", "1", "1"),
        ("budget", "daily", "2", "3"),
        ("budget", "per-user", "1", "1"),
    ]
    table = {
        line.split()[0]: line.split()[1:3]
        for line in _report(receipts, capsys).splitlines()
        if line.strip()
    }
    assert table["daily"] == ["2", "3"]
    assert table["per-user"] == ["1", "1"]
    assert table["(none)"] == ["1", "1"]


def test_other_breakdowns_keep_their_counts(
    receipts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["receipts", "report", str(receipts), "--format", "json"]
    assert main([*args, "--by", "route,model,budget"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["by"]["route"]["default"]["calls"] == 3
    assert data["by"]["model"]["openai/gpt-4o-mini"]["calls"] == 3
    assert data["by"]["model"]["openai/gpt-4o-mini"]["attempts"] == 4
    assert data["by"]["budget"]["daily"]["calls"] == 2
