"""Sinks: atomic JSONL appends across processes, daily files, SQLite rows, failures surface."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from policyroute.costs.report import load_receipts
from policyroute.costs.sinks import (
    CallableSink,
    JsonlSink,
    MultiSink,
    ReceiptSink,
    SqliteSink,
    encode_record,
)
from policyroute.errors import ReceiptError

from .writer import sample_record

WRITER = Path(__file__).with_name("writer.py")


def _spawn(path: Path, count: int, tag: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(count), tag],
        cwd=WRITER.parent,
        stderr=subprocess.PIPE,
    )


def test_sinks_satisfy_the_protocol(tmp_path: Path) -> None:
    sqlite = SqliteSink(tmp_path / "r.sqlite3")
    for sink in (JsonlSink(tmp_path / "r.jsonl"), sqlite, CallableSink(print), MultiSink([])):
        assert isinstance(sink, ReceiptSink)
    sqlite.close()


def test_each_record_is_one_complete_line(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "r.jsonl")
    sink.write({"kind": "call", "cost": "0.1", "text": "line\nbreak é"})
    sink.write({"kind": "call", "cost": "0.2"})
    sink.close()
    lines = (tmp_path / "r.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line)["cost"] for line in lines[:-1]] == ["0.1", "0.2"]


def test_date_template_rolls_over_to_a_new_file(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "deep" / "dir" / "{date}.jsonl")
    sink.write({"ts": "2026-01-01T23:59:59.999+00:00", "n": 1})
    sink.write({"ts": "2026-01-02T00:00:00.000+00:00", "n": 2})
    sink.write({"ts": "2026-01-02T00:00:01.000+00:00", "n": 3})
    sink.close()
    day1 = (tmp_path / "deep/dir/2026-01-01.jsonl").read_text().splitlines()
    day2 = (tmp_path / "deep/dir/2026-01-02.jsonl").read_text().splitlines()
    assert [json.loads(x)["n"] for x in day1] == [1]
    assert [json.loads(x)["n"] for x in day2] == [2, 3]


def test_threads_share_one_sink(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "r.jsonl")

    def work(tag: str) -> None:
        for i in range(300):
            sink.write(sample_record(tag, i))

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    records = list(load_receipts([tmp_path / "r.jsonl"]))
    assert Counter(r["writer"] for r in records) == {f"t{n}": 300 for n in range(6)}


def test_eight_processes_append_to_one_file_without_tearing(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    per_writer = 2000
    procs = [_spawn(path, per_writer, f"w{n}") for n in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == 8 * per_writer
    seen: dict[str, list[int]] = {}
    for line in lines:
        record = json.loads(line)  # every line parses: no interleaving
        seen.setdefault(record["writer"], []).append(record["seq"])
    # Each writer's lines are all there, in its own order.
    assert seen == {f"w{n}": list(range(per_writer)) for n in range(8)}


def test_sigkilled_writer_leaves_only_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "killed.jsonl"
    proc = _spawn(path, 0, "k")
    deadline = time.monotonic() + 30
    while (not path.exists() or path.stat().st_size < 200_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    stream = load_receipts([path])
    records = list(stream)
    assert len(records) > 100
    assert stream.skipped <= 1
    assert [r["seq"] for r in records] == list(range(len(records)))


def test_a_partial_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "partial.jsonl"
    whole = encode_record(sample_record("p", 0))
    other = encode_record(sample_record("p", 1))
    path.write_bytes(whole + b"not json\n" + other + whole[:57])
    stream = load_receipts([path])
    assert len(list(stream)) == 2
    assert stream.skipped == 2


def test_an_unterminated_line_that_happens_to_parse_is_still_skipped(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_bytes(b'{"kind":"call","cost":"1"}\n{"kind":"call","cost":"2"}')
    stream = load_receipts([path])
    assert [r["cost"] for r in stream] == ["1"]
    assert stream.skipped == 1


def test_unwritable_path_raises_receipt_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    sink = JsonlSink(blocker / "sub" / "r.jsonl")  # a file where a directory should be
    with pytest.raises(ReceiptError, match="cannot append receipt"):
        sink.write({"kind": "call"})


def test_unserialisable_record_raises_receipt_error(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "r.jsonl")
    with pytest.raises(ReceiptError, match="JSON"):
        sink.write({"kind": "call", "bad": float("nan"), "loop": _loop()})


def _loop() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


def test_sqlite_sink_stores_indexed_columns_and_the_json(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "r.sqlite3"
    sink = SqliteSink(db)
    sink.write(sample_record("s", 1))
    sink.write({"kind": "call", "request_id": "x", "cost": "0.5", "user": "u"})
    sink.close()
    with pytest.raises(ReceiptError, match="closed"):
        sink.write({"kind": "call"})
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = conn.execute("SELECT kind, model, user, cost, attempt, record FROM receipts")
        first, second = rows.fetchall()
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(receipts)")}
    assert first[:5] == (
        "attempt",
        "anthropic/claude-sonnet-4-5-20250929",
        "user-42",
        "0.010311",
        1,
    )
    assert json.loads(first[5]) == sample_record("s", 1)
    assert second[:5] == ("call", None, "u", "0.5", None)
    assert {"receipts_ts", "receipts_request", "receipts_user", "receipts_model"} <= indexes


def test_callable_and_multi_sink_report_failures(tmp_path: Path) -> None:
    seen: list[Any] = []

    def boom(record: Any) -> None:
        raise ValueError("nope")

    multi = MultiSink([CallableSink(boom), CallableSink(seen.append)])
    with pytest.raises(ReceiptError, match="nope"):
        multi.write({"kind": "call"})
    assert seen == [{"kind": "call"}]  # the healthy sink still got it
    assert multi.blocking is False
    with_sqlite = MultiSink([SqliteSink(tmp_path / "x.db")])
    assert with_sqlite.blocking is True
    with_sqlite.close()


def test_a_record_glued_to_a_partial_line_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "glued.jsonl"
    first, second, third = (encode_record(sample_record("g", n)) for n in range(3))
    # A writer died 100 bytes into ``second``; another process then appended ``third``.
    path.write_bytes(first + second[:100] + third)
    stream = load_receipts([path])
    assert [r["seq"] for r in stream] == [0, 2]
    assert stream.skipped == 1


def test_relative_sink_paths_stay_put_when_the_process_changes_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    jsonl = JsonlSink("receipts/{date}.jsonl")
    sqlite = SqliteSink("receipts.sqlite3")
    try:
        monkeypatch.chdir(second)
        record = {"kind": "call", "ts": "2026-03-01T00:00:00.000+00:00", "cost": "0.000100"}
        jsonl.write(record)
        sqlite.write(record)
    finally:
        jsonl.close()
        sqlite.close()
    assert (first / "receipts" / "2026-03-01.jsonl").read_text().count("\n") == 1
    assert (first / "receipts.sqlite3").exists()
    assert list(second.iterdir()) == []
