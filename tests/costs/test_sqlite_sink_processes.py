"""The SQLite sink with several processes creating and writing one database at once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

_WRITER = """
import sys, time
from policyroute.costs.sinks import SqliteSink
path, tag, count, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
while time.time() < start:  # all open the fresh database at the same moment
    time.sleep(0.001)
sink = SqliteSink(path)
for seq in range(count):
    sink.write({"schema_version": 1, "kind": "call", "cost": "0.000001", "user": tag,
                "request_id": f"{tag}-{seq}", "seq": seq})
sink.close()
"""


def test_processes_create_and_fill_one_database_without_losing_a_row(tmp_path: Path) -> None:
    path = tmp_path / "receipts.sqlite3"
    count, start = 300, time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), tag, str(count), str(start)],
            stderr=subprocess.PIPE,
        )
        for tag in "abcd"
    ]
    errors: list[str] = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                errors.append(err.decode())
    finally:
        for proc in procs:  # reaped whatever happened, not left to a later test's collector
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert errors == []
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT user, record FROM receipts ORDER BY id").fetchall()
    seen: dict[str, list[int]] = {}
    for user, record in rows:
        seen.setdefault(user, []).append(json.loads(record)["seq"])
    assert seen == {tag: list(range(count)) for tag in "abcd"}
