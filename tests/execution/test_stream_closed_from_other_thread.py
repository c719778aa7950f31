"""A sync stream closed from another thread than the one reading it.

``completion(stream=True)`` read in a worker thread and closed from another (a "stop"
button, a client that went away): the read under way ends, nothing more reaches the reader,
and the attempt is settled and its receipts written, once each, before ``close()`` returns.
A stream dropped unclosed in a pool worker is settled as the worker drops it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from exec_support import receipts_in

from policyroute import api
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hi"}]
WORDS = " ".join(f"w{i}" for i in range(40))


def _assert_settled_cancelled(folder: Path) -> None:
    attempt, call = receipts_in(folder)
    assert (attempt["kind"], attempt["status"]) == ("attempt", "cancelled")
    assert (call["kind"], call["status"]) == ("call", "cancelled")
    assert call["error"] == "GeneratorExit"  # as a close in the reading thread says
    (budget,) = attempt["budgets"]
    assert Decimal(budget["reserved"]) == 0
    assert Decimal(budget["spent"]) == Decimal(attempt["cost"]) > 0


class Reader:
    """Reads a stream in a thread of its own, noting each chunk and how the reading ended."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.chunks: list[Any] = []
        self.error: BaseException | None = None
        self.first = threading.Event()
        self.thread = threading.Thread(target=self._read)
        self.thread.start()

    def _read(self) -> None:
        try:
            for chunk in self.stream:
                self.chunks.append(chunk)
                self.first.set()
        except BaseException as exc:
            self.error = exc


@pytest.mark.parametrize("fault", ["slow", "stalled"])
def test_a_stream_closed_from_another_thread_stops_its_reader_and_settles_before_close_returns(
    fp: FakeProvider, metered_policy: Path, fault: str
) -> None:
    # Stalled: the reader is blocked in a read that would not end for a minute.
    slow = Reply(text=WORDS, chunk_delay=0.05)
    fp.script("a", slow if fault == "slow" else Fault.stall(after=4, timeout=60))
    stream = api.completion(policy=metered_policy, messages=MESSAGES, stream=True)
    reader = Reader(stream)
    assert reader.first.wait(10)
    time.sleep(0.2)

    started = time.monotonic()
    stream.close()
    closed_in = time.monotonic() - started
    read_by_then = len(reader.chunks)

    _assert_settled_cancelled(metered_policy.parent)
    reader.thread.join(5)
    assert not reader.thread.is_alive()
    assert reader.error is None
    assert len(reader.chunks) == read_by_then < 40
    assert closed_in < 2
    assert stream.result is None
    assert len(receipts_in(metered_policy.parent)) == 2


def test_a_stream_read_in_one_thread_and_closed_in_another_between_reads(
    fp: FakeProvider, metered_policy: Path
) -> None:
    fp.script("a", Reply(text=WORDS, chunk_delay=0.01))
    stream = api.completion(policy=metered_policy, messages=MESSAGES, stream=True)
    with ThreadPoolExecutor(1) as pool:
        taken = pool.submit(lambda: [next(stream) for _ in range(3)]).result()
        assert receipts_in(metered_policy.parent) == []
        pool.submit(stream.close).result()

    assert len(taken) == 3
    _assert_settled_cancelled(metered_policy.parent)
    assert list(stream) == []


def test_a_stream_dropped_unclosed_in_a_pool_worker_is_settled_there(
    fp: FakeProvider, metered_policy: Path
) -> None:
    fp.script("a", Reply(text=WORDS, chunk_delay=0.01))

    def read_three() -> int:
        stream = api.completion(policy=metered_policy, messages=MESSAGES, stream=True)
        return sum(1 for _, _ in zip(range(3), stream, strict=False))

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(read_three).result() == 3
        _assert_settled_cancelled(metered_policy.parent)


def test_two_threads_reading_one_stream_never_double_itsreceipts_in(
    fp: FakeProvider, metered_policy: Path
) -> None:
    # Misuse: both threads take chunks in turn, or one is told the stream is busy.
    fp.script("a", Reply(text=WORDS, chunk_delay=0.005))
    stream = api.completion(policy=metered_policy, messages=MESSAGES, stream=True)
    readers = [Reader(stream), Reader(stream)]
    for reader in readers:
        reader.thread.join(10)

    errors = [r.error for r in readers if r.error is not None]
    assert all(isinstance(e, ValueError) for e in errors)
    words = [
        w for r in readers for c in r.chunks for w in (c.choices[0].delta.content or "").split()
    ]
    assert sorted(words) == sorted(WORDS.split())
    attempt, call = receipts_in(metered_policy.parent)
    assert (attempt["status"], call["status"]) == ("ok", "ok")
