"""``policyroute receipts report --by budget`` on attempts that charged several lines of one
budget: a ``per: tags`` budget charges one line per tag of the call, and the attempt receipt
names the budget once per line. The attempt spent its cost once, and counts once under it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main


def _line(budget: str, scope: str) -> dict[str, Any]:
    return {
        "budget": budget,
        "scope": scope,
        "window": "month:2026-01",
        "limit": "100.000000",
        "spent": "0.300000",
        "reserved": "0.000000",
        "remaining": "99.700000",
        "thresholds_crossed": [],
    }


def _receipts(tmp_path: Path) -> Path:
    common = {
        "schema_version": 1,
        "request_id": "r1",
        "ts": "2026-01-02T03:04:05.000+00:00",
        "model": "openai/gpt-4o-mini",
        "route": "default",
        "tags": ["team-a", "batch"],
        "status": "ok",
        "cost": "0.300000",
        "input_tokens": 100,
        "output_tokens": 20,
    }
    attempt = {
        **common,
        "kind": "attempt",
        "attempt": 1,
        # as the guard writes them: one entry per line charged, the tags budget twice
        "budgets": [_line("per-tag", "team-a"), _line("per-tag", "batch"), _line("all", "*")],
    }
    call = {**common, "kind": "call", "attempts": 1}
    path = tmp_path / "receipts.jsonl"
    path.write_text(json.dumps(attempt) + "\n" + json.dumps(call) + "\n", encoding="utf-8")
    return path


def test_json_counts_an_attempt_once_under_a_budget_it_charged_per_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _receipts(tmp_path)

    status = main(["receipts", "report", str(path), "--by", "budget", "--format", "json"])

    out, err = capsys.readouterr()
    assert status == 0, err
    budgets = json.loads(out)["by"]["budget"]
    for name in ("per-tag", "all"):
        row = budgets[name]
        assert (row["calls"], row["attempts"]) == (1, 1), name
        assert (row["cost"], row["input_tokens"], row["output_tokens"]) == ("0.300000", 100, 20)


def test_csv_and_table_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _receipts(tmp_path)

    assert main(["receipts", "report", str(path), "--by", "budget", "--format", "csv"]) == 0
    rows = {row["key"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert (rows["per-tag"]["attempts"], rows["per-tag"]["cost"]) == ("1", "0.300000")

    assert main(["receipts", "report", str(path), "--by", "budget"]) == 0
    (line,) = [row for row in capsys.readouterr().out.splitlines() if row.startswith("per-tag")]
    assert line.split() == ["per-tag", "1", "1", "0", "0.300000", "100", "20", "0", "0"]
