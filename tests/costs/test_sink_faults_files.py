"""JSON-lines receipts when the file system misbehaves: full disks, files in the way."""

from __future__ import annotations

import asyncio
import errno
import gc
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute.accounting import PolicyAccounting, _clear_default_cache
from policyroute.api import clear_cache
from policyroute.costs.report import load_receipts
from policyroute.costs.sinks import JsonlSink
from policyroute.errors import ReceiptError
from policyroute.testing import FakeProvider, Reply, Usage

from .fakes import FakeGuard
from .helpers import make_policy
from .test_accounting import _ok

POLICY = """
policyroute: 1
name: file-faults
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_FILE_FAULT_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
receipts: {{sink: jsonl, path: {receipts}}}
defaults: {{max_tokens: 10}}
"""
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_FILE_FAULT_KEY", "sk-filefault-0123456789")
    with FakeProvider() as provider:
        provider.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
        yield provider
    clear_cache()
    _clear_default_cache()


def _policy(tmp_path: Path, fp: FakeProvider, receipts: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=fp.openai_base, receipts=receipts))
    return path


def _disk_fills_after(monkeypatch: pytest.MonkeyPatch, path: Path, room: int) -> None:
    """Writes to ``path`` take ``room`` more bytes, then fail with ENOSPC."""
    real_write = os.write
    inode = path.stat().st_ino
    left = [room]

    def write(fd: int, data: Any) -> int:
        if os.fstat(fd).st_ino != inode:
            return real_write(fd, data)
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, bytes(data[: left[0]]))
        left[0] -= written
        return written

    monkeypatch.setattr(os, "write", write)


def test_a_line_torn_by_a_full_disk_does_not_swallow_the_next_receipt(
    tmp_path: Path, fp: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    policy = _policy(tmp_path, fp, "receipts/r.jsonl")
    path = tmp_path / "receipts" / "r.jsonl"
    policyroute.completion(policy=policy, messages=MESSAGES)
    size = path.stat().st_size
    with (
        pytest.MonkeyPatch.context() as disk,
        caplog.at_level(logging.ERROR, logger="policyroute.accounting"),
    ):
        _disk_fills_after(disk, path, 40)  # the next attempt receipt is cut after 40 bytes
        response = policyroute.completion(policy=policy, messages=MESSAGES)
    policyroute.completion(policy=policy, messages=MESSAGES)

    assert response.choices[0].message.content == "hi"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2  # the torn attempt receipt and the call receipt
    assert all(str(path) in message and "No space left" in message for message in errors)
    tail = path.read_bytes()[size:].split(b"\n")
    assert len(tail[0]) == 40  # the torn line stands alone
    assert [json.loads(line)["kind"] for line in tail[1:] if line] == ["attempt", "call"]
    stream = load_receipts([path])
    assert [r["kind"] for r in stream] == ["attempt", "call"] * 2  # the 2nd call's: in unwritten
    assert stream.skipped == 1


def test_a_torn_tail_left_by_another_process_is_not_glued_to(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"kind":"call","n":1}\n{"kind":"att')  # a writer killed mid-line
    sink = JsonlSink(path)

    sink.write({"kind": "call", "n": 2})
    sink.write({"kind": "call", "n": 3})
    sink.close()

    assert path.read_bytes().split(b"\n")[1:] == [
        b'{"kind":"att',
        b'{"kind":"call","n":2}',
        b'{"kind":"call","n":3}',
        b"",
    ]


def test_a_file_where_the_directory_should_be_is_named_with_its_full_path(
    tmp_path: Path, fp: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "blocker").write_text("not a directory")
    policy = _policy(tmp_path, fp, "blocker/r.jsonl")

    with caplog.at_level(logging.ERROR, logger="policyroute.accounting"):
        response = policyroute.completion(policy=policy, messages=MESSAGES)

    assert response.choices[0].message.content == "hi"
    (first, _) = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = first.getMessage()
    assert f"JsonlSink {tmp_path / 'blocker' / 'r.jsonl'}" in message
    assert f"cannot create directory {tmp_path / 'blocker'}" in message
    assert first.policyroute_receipt["kind"] == "attempt"  # type: ignore[attr-defined]


def test_a_failing_sink_still_settles_the_budget(
    make_attempt: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "blocker").write_text("")
    policy = make_policy()
    guard = FakeGuard()
    acct = PolicyAccounting(policy, guard=guard, sinks=[JsonlSink(tmp_path / "blocker" / "r")])
    attempt = make_attempt(policy)

    with caplog.at_level(logging.ERROR, logger="policyroute.accounting"):
        cost = acct.settle(attempt, acct.admit(attempt), _ok())

    assert [settled for _, settled in guard.settled] == [cost]
    assert [r["kind"] for r in acct.unwritten] == ["attempt"]


def test_a_direct_write_error_names_the_directory(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    sink = JsonlSink(tmp_path / "blocker" / "r.jsonl")

    with pytest.raises(ReceiptError, match=r"cannot create directory .*blocker"):
        sink.write({"kind": "call"})


def test_receipts_can_go_to_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "receipts.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, as /dev/stdout has one
    try:
        sink = JsonlSink(fifo)
        sink.write({"kind": "call", "n": 1})
        sink.write({"kind": "call", "n": 2})
        sink.close()
        assert os.read(reader, 4096) == b'{"kind":"call","n":1}\n{"kind":"call","n":2}\n'
    finally:
        os.close(reader)


@pytest.mark.parametrize("how", ["close", "aclose", "collected"])
def test_closing_with_receipts_no_sink_took_says_so_and_hands_them_over(
    tmp_path: Path, fp: FakeProvider, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    (tmp_path / "blocker").write_text("not a directory")
    policy = policyroute.load_policy(_policy(tmp_path, fp, "blocker/r.jsonl"))
    acct = PolicyAccounting.from_policy(policy)
    policyroute.completion(policy=policy, accounting=acct, messages=MESSAGES)
    kept = list(acct.unwritten)
    assert [r["kind"] for r in kept] == ["attempt", "call"]

    with caplog.at_level(logging.ERROR, logger="policyroute.accounting"):
        caplog.clear()
        if how == "close":
            acct.close()
        elif how == "aclose":
            asyncio.run(acct.aclose())
        else:  # a default accounting nobody closes goes once nothing holds it
            acct._close_when_collected()
            del acct
            clear_cache()  # the executors cached for the calls made through it
            gc.collect()

    # Before: nothing was said, and a process ending then lost them without a word.
    (record,) = caplog.records
    assert record.getMessage() == (
        "the accounting of policy 'file-faults' closes with 2 receipt(s) no sink took, the"
        f" first {kept[0]['request_id']}/attempt: they are still in its"
        " PolicyAccounting.unwritten, and lost with it"
    )
    assert record.policyroute_receipts == kept  # type: ignore[attr-defined]


def test_closing_with_every_receipt_written_says_nothing(
    tmp_path: Path, fp: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    policy = policyroute.load_policy(_policy(tmp_path, fp, "r.jsonl"))
    acct = PolicyAccounting.from_policy(policy)
    policyroute.completion(policy=policy, accounting=acct, messages=MESSAGES)
    with caplog.at_level(logging.WARNING, logger="policyroute.accounting"):
        acct.close()
    assert caplog.records == []


def test_a_line_torn_by_ctrl_c_does_not_swallow_the_next_receipt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C landing after a short write (the signal that cut it) left the file open on a
    torn line, and the next receipt was appended to it: two records lost in one line."""
    path = tmp_path / "r.jsonl"
    sink = JsonlSink(path)
    sink.write({"kind": "call", "n": 1})
    real_write = os.write

    def interrupted(fd: int, data: bytes) -> int:
        real_write(fd, data[:10])
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", interrupted)
        with pytest.raises(KeyboardInterrupt):
            sink.write({"kind": "call", "n": 2})
    sink.write({"kind": "call", "n": 3})
    sink.close()

    lines = path.read_bytes().split(b"\n")
    assert lines[0] == b'{"kind":"call","n":1}'
    assert len(lines[1]) == 10  # the torn line stands alone
    assert lines[2:] == [b'{"kind":"call","n":3}', b""]
    stream = load_receipts([path])
    assert [r["n"] for r in stream] == [1, 3]
    assert stream.skipped == 1
