"""`policyroute receipts report` over inputs that overlap: each receipt is counted once, copies
are noted, and a conflicting copy is an error."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main

SCRIPT = Path(sys.executable).parent / "policyroute"


def _call(request_id: str, cost: str = "0.250000") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": "call",
        "request_id": request_id,
        "ts": "2026-01-02T03:04:05.000+00:00",
        "status": "ok",
        "cost": cost,
        "user": "東京",
    }


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_a_rotated_copy_overlapping_the_live_file_counts_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = tmp_path / "receipts.jsonl"
    live.write_bytes(_jsonl([_call("r1"), _call("r2"), _call("r3")]))
    rotated = tmp_path / "receipts.jsonl.1.gz"
    rotated.write_bytes(gzip.compress(_jsonl([_call("r1"), _call("r2")])))
    assert main(["receipts", "report", str(rotated), str(live), "--format", "json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["total"]["calls"] == 3
    assert data["total"]["cost"] == "0.750000"
    assert data["duplicate_receipts"] == 2
    assert data["conflicting_receipts"] == 0
    assert captured.err == (
        "policyroute receipts report: note: 2 duplicate receipt(s) read more than once:"
        " counted once\n"
    )


def test_a_conflicting_copy_is_an_error_and_the_first_read_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "a.jsonl"
    first.write_bytes(_jsonl([_call("r1")]))
    second = tmp_path / "b.jsonl"
    second.write_bytes(_jsonl([_call("r2"), _call("r1", "9.000000")]))
    assert main(["receipts", "report", str(first), str(second), "--by", "user"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[2].split() == ["all", "2", "0", "0", "0.500000", "0", "0", "0", "0"]
    assert lines[-1] == (
        "1 conflicting receipt(s) left out: same identity as one read before, other content"
        " (the first one read counts)"
    )
    assert captured.err == (
        f"policyroute receipts report: error: {second}:2: the call receipt of request 'r1'"
        " was read before with other content: this copy is left out (the first one read"
        " counts)\n"
    )


def test_the_console_script_counts_a_copy_once(tmp_path: Path) -> None:
    assert SCRIPT.is_file(), f"{SCRIPT} missing: run `pip install -e .`"
    live = tmp_path / "receipts.jsonl"
    live.write_bytes(_jsonl([_call("r1"), _call("r2")]))
    copy = tmp_path / "receipts-copy.jsonl"
    copy.write_bytes(live.read_bytes())
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [str(SCRIPT), "receipts", "report", str(live), str(copy), "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("total,all,2,0,0,0.500000,")
    assert "2 duplicate receipt(s) read more than once: counted once" in done.stderr
