"""``summarize`` over the records of some files sums as ``policyroute receipts report`` does
over the files themselves: both count each receipt once, copies and conflicts alike."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main
from policyroute.costs.report import summarize

BY = ["provider", "model", "route", "user", "day", "budget", "status"]


def _receipt(kind: str, request_id: str, cost: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": kind,
        "ts": "2026-01-02T23:59:59+00:00",
        "request_id": request_id,
        "provider": "openai",
        "model": "openai/gpt-4o-mini",
        "route": "default",
        "user": "alice",
        "status": "ok",
        "cost": cost,
        "input_tokens": 10,
        "output_tokens": 5,
        **fields,
    }


def _call(request_id: str, user: str) -> list[dict[str, Any]]:
    budgets = [{"budget": "daily", "scope": user}]
    return [
        _receipt(
            "attempt", request_id, "0.030000", attempt=1, status="error", user=user, budgets=budgets
        ),
        _receipt("attempt", request_id, "0.070000", attempt=2, user=user, budgets=budgets),
        _receipt("call", request_id, "0.100000", attempts=2, user=user),
    ]


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode()
    return [json.loads(line) for line in text.splitlines()]


def test_overlapping_files_sum_the_same_both_ways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c = _call("req-a", "alice"), _call("req-b", "bob"), _call("req-c", "alice")
    conflicting = {**b[2], "cost": "9.000000"}  # req-b's call receipt, rewritten
    rotated = _write(tmp_path / "receipts.jsonl.1.gz", a + b)
    live = _write(tmp_path / "receipts.jsonl", [*b[:2], conflicting, *c])
    copy = _write(tmp_path / "copy.jsonl", a)

    status = main(
        [
            "receipts",
            "report",
            "--format",
            "json",
            "--by",
            ",".join(BY),
            str(rotated),
            str(live),
            str(copy),
        ]
    )
    cli = json.loads(capsys.readouterr().out)
    python = summarize([r for p in (rotated, live, copy) for r in _lines(p)], by=BY).as_dict()

    assert status == 1  # the conflict is an error
    assert cli["total"] == python["total"]
    assert cli["by"] == python["by"]
    assert cli["total"]["cost"] == "0.300000"
    assert (cli["total"]["calls"], cli["total"]["attempts"]) == (3, 6)
    assert cli["duplicate_receipts"] == python["duplicate_receipts"] == 5
    assert cli["conflicting_receipts"] == python["conflicting_receipts"] == 1
    assert [p["line"] for p in python["problems"]] == [9]  # its place among the records
    assert [(Path(p["file"]).name, p["line"]) for p in cli["problems"]] == [("receipts.jsonl", 3)]
