"""A receipt sink whose writes block holds up no other sink's receipts.

A third party's blocking sink (no ``awrite``) writes from async code in threads of its own:
while one such sink waits (its service down, say), the receipts of every other sink, in the
same :class:`MultiSink` or elsewhere in the process, go on being written, and the waiting
sink's own are all written, in order, once it answers again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from policyroute.costs import sink_threads
from policyroute.costs.sinks import MultiSink, awrite_record
from policyroute.errors import ReceiptError, SinksRefusedError

pytestmark = pytest.mark.timeout(60)

# A backstop against a hang, never reached when the code is right: each wait below ends on an
# event.
BACKSTOP_S = 20.0


class _Sink:
    """A blocking third-party sink (no ``awrite``) that records what it was given; its writes
    wait until ``release`` is set when made ``gated``."""

    def __init__(self, *, gated: bool = False) -> None:
        self.written: list[str] = []
        self.waiting = 0
        self.release = threading.Event()
        if not gated:
            self.release.set()
        self.entered = threading.Condition()
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        with self.entered:
            self.waiting += 1
            self.entered.notify_all()
        assert self.release.wait(BACKSTOP_S), "never released"
        with self._lock:
            self.written.append(str(record["request_id"]))

    def close(self) -> None:
        pass

    def until_waiting(self, count: int) -> None:
        with self.entered:
            assert self.entered.wait_for(lambda: self.waiting >= count, BACKSTOP_S)


def _record(n: int) -> dict[str, Any]:
    return {"kind": "call", "request_id": f"r{n}"}


@pytest.mark.asyncio
async def test_a_blocked_sink_delays_no_other_sinks_receipts() -> None:
    stuck, other = _Sink(gated=True), _Sink()
    # More writes than the stuck sink has threads: some wait their turn behind the others.
    count = 3 * sink_threads.SINK_WORKERS
    stuck_writes = [asyncio.ensure_future(awrite_record(stuck, _record(n))) for n in range(count)]
    await asyncio.to_thread(stuck.until_waiting, sink_threads.SINK_WORKERS)

    # Before: third-party sinks shared 4 threads, all now taken by the stuck sink's writes.
    for n in range(count):
        await asyncio.wait_for(awrite_record(other, _record(n)), BACKSTOP_S)
    assert other.written == [f"r{n}" for n in range(count)]
    assert stuck.written == []
    assert not any(write.done() for write in stuck_writes)

    stuck.release.set()
    await asyncio.wait_for(asyncio.gather(*stuck_writes), BACKSTOP_S)
    assert sorted(stuck.written, key=lambda r: int(r[1:])) == [f"r{n}" for n in range(count)]


@pytest.mark.asyncio
async def test_a_multi_sink_writes_to_its_other_sinks_while_one_is_blocked() -> None:
    stuck, other = _Sink(gated=True), _Sink()
    multi = MultiSink([stuck, other])
    writes = [asyncio.ensure_future(multi.awrite(_record(n))) for n in range(3)]
    await asyncio.to_thread(stuck.until_waiting, 3)

    # Before: a MultiSink wrote to its sinks in turn, the second only once the first answered.
    deadline = asyncio.get_running_loop().time() + BACKSTOP_S
    while len(other.written) < 3:
        assert asyncio.get_running_loop().time() < deadline, "the other sink was held up"
        await asyncio.sleep(0.001)
    assert sorted(other.written) == ["r0", "r1", "r2"]
    assert stuck.written == []
    assert not any(write.done() for write in writes)  # each returns once every sink answered

    stuck.release.set()
    await asyncio.wait_for(asyncio.gather(*writes), BACKSTOP_S)
    assert sorted(stuck.written) == ["r0", "r1", "r2"]


class _Refusing:
    blocking = True

    def write(self, record: Mapping[str, Any]) -> None:
        raise ReceiptError("disk full")

    def close(self) -> None:
        pass


class _Broken(_Refusing):
    def write(self, record: Mapping[str, Any]) -> None:
        raise ValueError("a bug in the sink")


@pytest.mark.asyncio
async def test_a_multi_sink_names_each_refusing_sink_once_all_have_answered() -> None:
    first, second, fine = _Refusing(), _Refusing(), _Sink()
    with pytest.raises(SinksRefusedError) as caught:
        await MultiSink([first, fine, second]).awrite(_record(1))
    assert caught.value.refused == (first, second)
    assert fine.written == ["r1"]


@pytest.mark.asyncio
async def test_a_sinks_own_error_still_leaves_the_others_written() -> None:
    fine, broken = _Sink(), _Broken()
    # The error counts as that sink refusing: the receipt is kept for it alone.
    with pytest.raises(SinksRefusedError, match="ValueError: a bug in the sink") as caught:
        await MultiSink([broken, fine]).awrite(_record(1))
    assert caught.value.refused == (broken,)
    assert isinstance(caught.value.__cause__, ValueError)
    assert fine.written == ["r1"]


def test_a_sinks_own_error_does_not_stop_the_sinks_after_it() -> None:
    fine, broken = _Sink(), _Broken()
    # Before: the sync write stopped at the error, and the sinks after it never got the record.
    with pytest.raises(SinksRefusedError) as caught:
        MultiSink([broken, fine]).write(_record(1))
    assert caught.value.refused == (broken,)
    assert fine.written == ["r1"]
    with pytest.raises(SinksRefusedError) as caught:
        MultiSink([broken, fine]).write_many([_record(2), _record(3)])
    assert caught.value.refused == (broken,)
    assert fine.written == ["r1", "r2", "r3"]


def test_sinks_beyond_the_bound_take_over_the_pools_of_those_used_longest_ago() -> None:
    sinks = [_Sink() for _ in range(sink_threads.MAX_POOLS + 3)]
    pools = [sink_threads.pool_for(sink) for sink in sinks]
    assert len({id(pool) for pool in pools}) == len(sinks)  # one each, while all are alive
    assert sink_threads.pool_for(sinks[-1]) is pools[-1]
    assert len(sink_threads._pools) == sink_threads.MAX_POOLS
    # The first sink's pool was let go: it gets a new one, never another live sink's.
    again = sink_threads.pool_for(sinks[0])
    assert again is not pools[0]
    assert all(again is not pool for pool in pools)


class _Bare(_Refusing):
    def write(self, record: Mapping[str, Any]) -> None:
        raise RuntimeError


def test_a_sinks_own_error_without_a_message_is_named_by_its_type() -> None:
    broken, fine = _Bare(), _Sink()
    with pytest.raises(SinksRefusedError) as caught:
        MultiSink([broken, fine]).write(_record(1))
    # Before: "_Bare: RuntimeError: ", a reason left blank.
    assert str(caught.value) == "_Bare: RuntimeError"
