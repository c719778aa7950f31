"""A file of bad lines (a binary file, a newer policyroute's receipts) is reported in bounded
memory: every problem is counted, the first ``MAX_PROBLEMS`` are kept."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from policyroute.costs import receipt_files
from policyroute.costs.report import format_report, load_receipts, summarize

NEWER = {"schema_version": 99, "kind": "call", "cost": "0.1", "ts": "2026-01-02T00:00:00Z"}


def test_problems_past_the_limit_are_counted_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "newer.jsonl"
    path.write_bytes((json.dumps(NEWER).encode() + b"\n") * 20_000)
    tracemalloc.start()
    try:
        stream = load_receipts([path])
        report = summarize(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.skipped == 20_000
    assert stream.problem_count == stream.error_count == 20_000
    assert len(report.problems) == receipt_files.MAX_PROBLEMS
    assert report.problems_left_out == 20_000 - receipt_files.MAX_PROBLEMS
    assert json.loads(format_report(report, "json"))["problems_left_out"] > 0
    # Kept, the 20,000 problems took 5 MB: more memory than the file takes on disk.
    assert peak < 2 * 1024 * 1024


def test_an_error_after_the_kept_problems_still_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receipt_files, "MAX_PROBLEMS", 2)
    path = tmp_path / "r.jsonl"
    glued = b'{"kind": "call", "cost": "0.1"' + b'{"schema_version": 1, "kind": "call"}\n'
    path.write_bytes(glued * 3 + b"not json\n")  # three partial (warnings), then an error
    stream = load_receipts([path])
    report = summarize(stream)
    assert report.total.calls == 3
    assert [p.partial for p in stream.problems] == [True, True]
    assert (stream.problem_count, stream.error_count) == (4, 1)
