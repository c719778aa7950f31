"""``?wait_replicas=N`` on a real Sentinel group (a primary and its replica): each write waits
until the replica acknowledged it; a reservation the replica did not acknowledge in time is
given back and refused (BudgetStoreError, as a store that cannot be reached), while a
settlement or a renewal it did not acknowledge holds on the primary and is logged.

The replica is held still with SIGSTOP (it stays connected, so the primary keeps streaming to
it, but it acknowledges nothing until SIGCONT).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from budgets.redis_servers import sentinel_group, wait_until
from policyroute.budgets.stores.base import LineState, ReserveLine, ReserveResult
from policyroute.budgets.stores.redis import RedisStore
from policyroute.errors import BudgetStoreError

pytestmark = pytest.mark.timeout(60)

KEY = "team/*/day:x"


def _line(now: float, amount: str = "0.1") -> ReserveLine:
    return ReserveLine(KEY, Decimal(1), Decimal(amount), now + 86_400)


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, int]]:
    """A group of its own: these tests stop its replica, which others must not meet."""
    with sentinel_group(tmp_path_factory.mktemp("redis-wait")) as ports:
        yield ports


def _url(group: tuple[int, int, int], query: str) -> str:
    return f"redis+sentinel://127.0.0.1:{group[2]}/budgets/0?{query}"


@contextlib.contextmanager
def _stopped(port: int) -> Iterator[None]:
    """The redis-server on ``port`` frozen (SIGSTOP) until the block ends."""
    with redis.Redis(port=port) as client:
        pid = int(client.info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _resumed_later(port: int, delay: float) -> tuple[threading.Thread, threading.Event]:
    """Freeze the server on ``port`` now; a thread resumes it after ``delay`` s and sets the
    event it returns just before."""
    with redis.Redis(port=port) as client:
        pid = int(client.info("server")["process_id"])
    resumed = threading.Event()
    os.kill(pid, signal.SIGSTOP)

    def resume() -> None:
        time.sleep(delay)
        resumed.set()
        os.kill(pid, signal.SIGCONT)

    thread = threading.Thread(target=resume)
    thread.start()
    return thread, resumed


def _held(port: int, prefix: str, reservation_id: str) -> bool:
    with redis.Redis(port=port) as client:
        return client.zscore("{" + prefix + "}:res", reservation_id) is not None


def _reserved(port: int, prefix: str) -> bytes | None:
    with redis.Redis(port=port) as client:
        reserved: bytes | None = client.hget("{" + prefix + "}:line:" + KEY, "reserved")
        return reserved


def _in_sync(primary: int, replica: int) -> bool:
    with redis.Redis(port=primary) as p, redis.Redis(port=replica) as r:
        offset = p.info("replication")["master_repl_offset"]
        return bool(r.info("replication")["slave_repl_offset"] >= offset)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_reservation_returns_once_the_replica_holds_it(
    group: tuple[int, int, int], api: str
) -> None:
    primary, replica, _ = group
    prefix = f"w{uuid.uuid4().hex[:8]}"
    # Long enough for a replica frozen for half a second to catch up, below the 5 s command
    # timeout.
    store = RedisStore(_url(group, "wait_replicas=1&wait_timeout=3"), prefix=prefix)
    now = time.time()

    async def areserve() -> ReserveResult:
        try:
            return await store.areserve(
                [_line(now)], reservation_id="r1", lease_seconds=60, now=now
            )
        finally:
            await store.aclose()

    try:
        store.state(KEY, now=now)  # connected before the replica stops
        thread, resumed = _resumed_later(replica, 0.5)
        try:
            if api == "sync":
                result = store.reserve([_line(now)], reservation_id="r1", lease_seconds=60, now=now)
            else:
                result = asyncio.run(areserve())
            # Without waiting, the call returns while the replica is still frozen.
            returned_after_resume = resumed.is_set()
        finally:
            thread.join()
        assert returned_after_resume
        assert result.ok
        assert _held(replica, prefix, "r1")
        assert _held(primary, prefix, "r1")
    finally:
        store.close()


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_reservation_the_replica_did_not_acknowledge_is_refused_and_given_back(
    group: tuple[int, int, int], api: str
) -> None:
    primary, replica, _ = group
    prefix = f"w{uuid.uuid4().hex[:8]}"
    store = RedisStore(_url(group, "wait_replicas=1&wait_timeout=0.05"), prefix=prefix)
    now = time.time()

    async def areserve() -> None:
        try:
            await store.areserve([_line(now)], reservation_id="r1", lease_seconds=60, now=now)
        finally:
            await store.aclose()

    def reserve() -> None:
        if api == "sync":
            store.reserve([_line(now)], reservation_id="r1", lease_seconds=60, now=now)
        else:
            asyncio.run(areserve())

    try:
        with _stopped(replica), pytest.raises(BudgetStoreError) as refused:
            reserve()
        message = str(refused.value)
        assert "reached 0 of the 1 replicas wait_replicas asks for within 0.05 s" in message
        assert "given back" in message
        # Nothing held on the primary, and, once the replica catches up, nothing there either.
        assert not _held(primary, prefix, "r1")
        assert _reserved(primary, prefix) == b"0"
        wait_until(lambda: _in_sync(primary, replica), "the replica did not catch up")
        assert not _held(replica, prefix, "r1")
        assert _reserved(replica, prefix) == b"0"
        # The same store reserves again once the replica answers.
        later = store.reserve([_line(now)], reservation_id="r2", lease_seconds=60, now=now)
        assert later.ok
        [settled] = store.settle("r2", Decimal("0.04"), now=now)
        assert (settled.spent, settled.reserved) == (Decimal("0.04"), Decimal(0))
    finally:
        store.close()


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_settlement_the_replica_did_not_acknowledge_holds_and_is_logged(
    group: tuple[int, int, int], api: str, caplog: pytest.LogCaptureFixture
) -> None:
    primary, replica, _ = group
    prefix = f"w{uuid.uuid4().hex[:8]}"
    store = RedisStore(_url(group, "wait_replicas=1&wait_timeout=0.05"), prefix=prefix)
    now = time.time()

    async def renew_and_settle() -> tuple[bool, list[LineState]]:
        try:
            renewed = await store.arenew("r1", 120, now=now)
            return renewed, list(await store.asettle("r1", Decimal("0.04"), now=now))
        finally:
            await store.aclose()

    try:
        assert store.reserve([_line(now)], reservation_id="r1", lease_seconds=60, now=now).ok
        caplog.set_level(logging.WARNING, logger="policyroute.budgets")
        with _stopped(replica):
            if api == "sync":
                renewed = store.renew("r1", 120, now=now)
                settled = list(store.settle("r1", Decimal("0.04"), now=now))
            else:
                renewed, settled = asyncio.run(renew_and_settle())
        assert renewed
        assert [(s.spent, s.reserved) for s in settled] == [(Decimal("0.04"), Decimal(0))]
        warnings = [r.getMessage() for r in caplog.records if r.name == "policyroute.budgets"]
        assert len(warnings) == 2
        assert "a lease renewal reached 0 of the 1 replicas" in warnings[0]
        assert "a settlement reached 0 of the 1 replicas" in warnings[1]
        assert "holds on the primary" in warnings[1]
        wait_until(lambda: _in_sync(primary, replica), "the replica did not catch up")
        assert _reserved(replica, prefix) == b"0"
        assert not _held(replica, prefix, "r1")
    finally:
        store.close()


def test_a_server_without_replicas_refuses_every_reservation_and_holds_nothing(
    redis_url: str,
) -> None:
    prefix = f"w{uuid.uuid4().hex[:8]}"
    store = RedisStore(redis_url + "?wait_replicas=1&wait_timeout=0.01", prefix=prefix)
    plain = RedisStore(redis_url, prefix=prefix)
    now = time.time()
    try:
        for rid in ("r1", "r2"):
            with pytest.raises(BudgetStoreError, match="reached 0 of the 1 replicas"):
                store.reserve([_line(now)], reservation_id=rid, lease_seconds=60, now=now)
        state = plain.state(KEY, now=now)
        assert (state.spent, state.reserved) == (Decimal(0), Decimal(0))
    finally:
        store.close()
        plain.close()


def test_wait_replicas_0_waits_for_nothing(redis_url: str) -> None:
    store = RedisStore(redis_url + "?wait_replicas=0", prefix=f"w{uuid.uuid4().hex[:8]}")
    now = time.time()
    try:
        assert store.reserve([_line(now)], reservation_id="r1", lease_seconds=60, now=now).ok
    finally:
        store.close()


def test_the_reclaim_waits_too(
    group: tuple[int, int, int], caplog: pytest.LogCaptureFixture
) -> None:
    primary, replica, _ = group
    prefix = f"w{uuid.uuid4().hex[:8]}"
    store = RedisStore(_url(group, "wait_replicas=1&wait_timeout=0.05"), prefix=prefix)
    now = time.time()
    try:
        assert store.reserve([_line(now)], reservation_id="r1", lease_seconds=1, now=now).ok
        caplog.set_level(logging.WARNING, logger="policyroute.budgets")
        with _stopped(replica):
            time.sleep(1.2)  # the lease ends by the server's clock
            assert store.reclaim_expired(time.time()) == 1
        assert any(
            "a reclaim of expired leases reached 0" in r.getMessage() for r in caplog.records
        )
        wait_until(lambda: _in_sync(primary, replica), "the replica did not catch up")
        assert not _held(replica, prefix, "r1")
    finally:
        store.close()
