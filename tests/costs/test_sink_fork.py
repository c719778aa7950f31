"""Receipt sinks in a process forked while another thread was writing a receipt.

A pre-forking server (gunicorn ``--preload``, Celery's prefork pool, ``multiprocessing`` with
the ``fork`` start method) may fork while one of its threads is inside a sink's ``write``: the
child inherits the sink's lock held, by a thread it does not have. The child must still write
its receipts, on a file descriptor or database connection of its own.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from policyroute.costs.sinks import JsonlSink, ReceiptSink, SqliteSink
from policyroute.costs.token_cache import PrefixCounts
from policyroute.costs.unwritten import UnwrittenReceipts
from policyroute.errors import ReceiptError

from .helpers import fork, jsonl_records, receipt_ids

CHILD_SECONDS = 5.0


def _fork_and_write(sink: ReceiptSink, record: dict[str, Any]) -> int:
    """Fork; the child writes ``record`` and exits 0, or 3 if its write raised. Returns the
    child's pid (the caller reaps it with :func:`_exit_code`)."""
    pid = fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            sink.write(record)
            code = 0
        finally:
            os._exit(code)
    return pid


def _until_held(sink: JsonlSink | SqliteSink) -> None:
    """Wait until a thread holds ``sink`` (is inside its write)."""
    deadline = time.monotonic() + CHILD_SECONDS
    while not sink._lock.locked():
        assert time.monotonic() < deadline, "the writer thread never started its write"
        time.sleep(0.001)
    time.sleep(0.02)  # and has gone on into os.write or SQLite's wait


def _exit_code(pid: int) -> int | None:
    """The child's exit code, or ``None`` if it was still running after CHILD_SECONDS (it
    is then killed and reaped)."""
    deadline = time.monotonic() + CHILD_SECONDS
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


class _SlowDisk:
    """``stall(fd)``: this process's writes to ``fd`` wait until ``release()``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.released = threading.Event()
        self.stalled: set[int] = set()
        self.parent = os.getpid()
        self.real: Callable[[int, Any], int] = os.write
        monkeypatch.setattr(os, "write", self.write)

    def write(self, fd: int, data: Any) -> int:
        if fd in self.stalled and os.getpid() == self.parent:
            self.released.wait(CHILD_SECONDS)
        return self.real(fd, data)

    def stall(self, fd: int) -> None:
        self.stalled.add(fd)

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def slow_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[_SlowDisk]:
    disk = _SlowDisk(monkeypatch)
    yield disk
    disk.release()


def test_a_jsonl_child_forked_mid_write_writes_its_own_receipts(
    tmp_path: Path, slow_disk: _SlowDisk
) -> None:
    path = tmp_path / "r.jsonl"
    sink = JsonlSink(path)
    sink.write({"who": "parent", "n": 1})
    assert sink._fd is not None
    slow_disk.stall(sink._fd)
    writer = threading.Thread(target=sink.write, args=({"who": "parent", "n": 2},))
    writer.start()
    _until_held(sink)  # the writer now holds the sink, inside os.write

    pid = _fork_and_write(sink, {"who": "child", "n": 1})
    code = _exit_code(pid)
    slow_disk.release()
    writer.join(CHILD_SECONDS)

    assert code == 0, "the child hung on a lock a thread of its parent held at fork"
    sink.write({"who": "parent", "n": 3})
    sink.close()
    assert sorted((r["who"], r["n"]) for r in jsonl_records(path)) == [
        ("child", 1),
        ("parent", 1),
        ("parent", 2),
        ("parent", 3),
    ]


def test_a_sqlite_child_forked_mid_write_refuses_at_once_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    sink = SqliteSink(path, timeout=CHILD_SECONDS)
    sink.write({"kind": "call", "request_id": "parent-1"})
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process's long write: the sink's insert waits
    writer = threading.Thread(target=sink.write, args=({"kind": "call", "request_id": "p-2"},))
    writer.start()
    _until_held(sink)  # the writer now holds the sink (and its connection), waiting
    read, write = os.pipe()

    pid = fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read)
            started = time.monotonic()
            try:
                sink.write({"kind": "call", "request_id": "child-1"})
                said = "written"
            except ReceiptError as exc:
                said = str(exc)
            try:
                # A sink made afresh would trust the same record of the file's locks.
                SqliteSink(path, timeout=CHILD_SECONDS).write({"kind": "call", "request_id": "c2"})
                fresh = "written"
            except ReceiptError:
                fresh = "refused"
            os.write(write, f"{time.monotonic() - started:.3f} {fresh} {said}".encode())
        finally:
            os._exit(0)
    os.close(write)
    code = _exit_code(pid)
    blocker.execute("ROLLBACK")
    blocker.close()
    writer.join(CHILD_SECONDS)

    assert code == 0, "the child hung on a lock a thread of its parent held at fork"
    with os.fdopen(read, "rb") as answer:
        seconds, fresh, said = answer.read().decode().split(" ", 2)
    # SQLite's record of the file's locks in the child is a copy of the writing parent's:
    # no connection of the child can be trusted with the file. It says so, at once, rather
    # than waiting out its busy timeout on every receipt.
    assert float(seconds) < 1.0
    assert str(path) in said
    assert "forked while another thread was writing" in said
    assert "'spawn' or 'forkserver'" in said
    assert fresh == "refused"
    sink.write({"kind": "call", "request_id": "parent-3"})  # the parent carries on
    sink.close()
    assert receipt_ids(path) == ["p-2", "parent-1", "parent-3"]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_sqlite_child_does_not_use_its_parents_connection(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    sink = SqliteSink(path)
    sink.write({"kind": "call", "request_id": "parent-1"})
    read, write = os.pipe()
    pid = fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            inherited = sink._conn
            sink.write({"kind": "call", "request_id": "child-1"})
            os.write(write, b"own" if sink._conn is not inherited else b"inherited")
        finally:
            os._exit(0)
    os.close(write)
    assert _exit_code(pid) == 0
    with os.fdopen(read, "rb") as answer:
        # SQLite: a connection carried across fork() must not be used in the child
        # (https://sqlite.org/howtocorrupt.html, section 2.6).
        assert answer.read() == b"own"
    sink.write({"kind": "call", "request_id": "parent-2"})
    sink.close()
    assert receipt_ids(path) == ["child-1", "parent-1", "parent-2"]


def _held_at_fork(lock_of: Callable[[], Any], child: Callable[[], None]) -> int | None:
    """Fork while another thread holds the lock ``lock_of()`` returns; the child runs ``child``
    and exits 0 (3 if it raised). The child's exit code, or ``None`` if it hung."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock_of():
            holding.set()
            release.wait(CHILD_SECONDS)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(CHILD_SECONDS)
        pid = fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 3
            try:
                child()
                code = 0
            finally:
                os._exit(code)
        return _exit_code(pid)
    finally:
        release.set()
        holder.join(CHILD_SECONDS)


def test_a_child_forked_while_a_thread_kept_an_unwritten_receipt_keeps_its_own() -> None:
    kept = UnwrittenReceipts()
    sink = JsonlSink("/nonexistent/r.jsonl")

    def child() -> None:
        kept.keep({"kind": "call", "request_id": "child-1"}, sink)
        assert [r["request_id"] for r in kept] == ["child-1"]

    assert _held_at_fork(lambda: kept._lock, child) == 0, "the child hung on the lock"


def test_a_child_forked_while_a_thread_counted_prompt_tokens_counts_its_own() -> None:
    counts = PrefixCounts()
    messages = [{"role": "user", "content": "hello there"}]

    def words(listed: Any) -> int:
        return 3 + sum(len(str(m["content"]).split()) for m in listed)

    assert counts.count("m", messages, words) == 5

    def child() -> None:
        assert counts.count("m", messages, words) == 5

    assert _held_at_fork(lambda: counts._lock, child) == 0, "the child hung on the lock"
