"""``policyroute receipts report -`` reads receipts from standard input (plain or gzip), as a
pipeline gives them: ``zcat old.jsonl.gz | policyroute receipts report -``."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from policyroute.costs.receipts import SCHEMA_VERSION


def _lines(count: int) -> bytes:
    record = {
        "schema_version": SCHEMA_VERSION,
        "kind": "call",
        "ts": "2026-01-02T03:04:05.000+00:00",
        "status": "ok",
        "cost": "0.250000",
        "model": "openai/gpt-4o-mini",
    }
    return b"".join(json.dumps(record).encode() + b"\n" for _ in range(count))


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_dash_reads_standard_input(compress: bool) -> None:
    data = _lines(4)
    done = subprocess.run(
        [sys.executable, "-m", "policyroute", "receipts", "report", "-", "--format", "json"],
        input=gzip.compress(data) if compress else data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["total"]["calls"] == 4
    assert report["total"]["cost"] == "1.000000"
