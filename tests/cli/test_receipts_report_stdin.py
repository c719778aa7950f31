"""``policyroute receipts report -`` reads receipts from standard input (plain or gzip), as a
pipeline gives them: ``zcat old.jsonl.gz | policyroute receipts report -``."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _report(
    stdin: Any, *args: str, data: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "policyroute", "receipts", "report", *args],
        stdin=stdin,
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_empty_standard_input_reports_nothing_as_an_empty_file_does(
    tmp_path: Path, fmt: str
) -> None:
    """``receipts report - < /dev/null`` (a script's empty input) was refused as a device."""
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    expected = _report(subprocess.DEVNULL, str(empty), "--format", fmt)
    assert (expected.returncode, expected.stderr) == (0, b"")
    with empty.open("rb") as redirected:
        runs = {
            "/dev/null": _report(subprocess.DEVNULL, "-", "--format", fmt),
            "an empty file": _report(redirected, "-", "--format", fmt),
            "an empty pipe": _report(None, "-", "--format", fmt, data=b""),
        }
    for name, done in runs.items():
        assert (done.returncode, done.stdout, done.stderr) == (0, expected.stdout, b""), name


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_a_terminal_as_standard_input_is_still_refused_unread() -> None:
    """A terminal would be read until someone typed an end: it stays refused, as a device."""
    leader, follower = os.openpty()
    try:
        done = _report(follower, "-")
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert b"not a file: <stdin>" in done.stderr
