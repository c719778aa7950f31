"""A SQLite receipt sink whose timeout has no bound (``inf``, or past what a lock can wait)
writes, as sqlite3 itself waits for ever then, instead of failing every receipt."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from pathlib import Path

import pytest

from policyroute.costs.sqlite_sink import SqliteSink


@pytest.mark.parametrize("timeout", [math.inf, threading.TIMEOUT_MAX * 2])
def test_a_write_with_an_unbounded_timeout_is_stored(tmp_path: Path, timeout: float) -> None:
    path = tmp_path / "receipts.sqlite3"
    sink = SqliteSink(path, timeout=timeout)
    record = {"ts": "2026-03-01T00:00:00Z", "kind": "call", "request_id": "r-1"}
    try:
        sink.write(record)
    finally:
        sink.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT record FROM receipts").fetchall()
    conn.close()
    assert [json.loads(payload)["request_id"] for (payload,) in rows] == ["r-1"]
