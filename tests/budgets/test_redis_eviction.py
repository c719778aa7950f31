"""A Redis that may evict keys under memory pressure would forget budget spend silently: the
store warns about it on its first reservation, sync or async, and stays quiet otherwise.

A first reservation that finds the server unreachable (a process started while Redis
restarted, a network blip) leaves the check to the first reservation that reaches the server,
instead of skipping it for the life of the store."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from budgets.helpers import make_store
from budgets.proxy import FaultyProxy
from policyroute.budgets.stores.base import ReserveLine
from policyroute.budgets.stores.redis import RedisStore
from policyroute.errors import BudgetStoreError

NOW = 1_750_000_000.0
LINE = ReserveLine(
    key="b/global/day", limit=Decimal(1), amount=Decimal("0.1"), expires_at=NOW + 86_400
)


@pytest.fixture
def evicting(redis_url: str) -> Iterator[None]:
    """The test server, for one test, with a memory limit and an LRU eviction policy."""
    admin = RedisStore(redis_url)._sync
    admin.config_set("maxmemory", "1gb")
    admin.config_set("maxmemory-policy", "allkeys-lru")
    try:
        yield
    finally:
        admin.config_set("maxmemory", "0")
        admin.config_set("maxmemory-policy", "noeviction")
        admin.close()


def _store(redis_url: str) -> RedisStore:
    store = make_store("redis", redis_url, f"ev{uuid.uuid4().hex[:8]}")
    assert isinstance(store, RedisStore)
    return store


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "policyroute.budgets" and r.levelno == logging.WARNING
    ]


@pytest.mark.usefixtures("evicting")
def test_an_evicting_server_is_named_once_on_the_first_reservation(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(redis_url)
    with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
        for n in range(3):
            store.reserve([LINE], reservation_id=f"r{n}", lease_seconds=60, now=NOW)
    store.close()
    (message,) = _warnings(caplog)
    assert "maxmemory-policy allkeys-lru" in message
    assert "set maxmemory-policy noeviction" in message
    assert "127.0.0.1" in message


@pytest.mark.usefixtures("evicting")
def test_the_async_path_checks_too(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = _store(redis_url)

    async def reserve() -> None:
        for n in range(2):
            await store.areserve([LINE], reservation_id=f"a{n}", lease_seconds=60, now=NOW)
        await store.aclose()

    with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
        asyncio.run(reserve())
    store.close()
    (message,) = _warnings(caplog)
    assert "maxmemory-policy allkeys-lru" in message


def test_a_server_that_cannot_evict_is_not_reported(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(redis_url)
    with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
        store.reserve([LINE], reservation_id="r", lease_seconds=60, now=NOW)
    store.close()
    assert _warnings(caplog) == []


@pytest.mark.usefixtures("evicting")
def test_a_server_unreachable_at_first_is_checked_once_reached(
    proxy: FaultyProxy, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(proxy.url(), prefix=f"ev{uuid.uuid4().hex[:8]}")
    try:
        with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
            proxy.refuse = True
            with pytest.raises(BudgetStoreError, match="Connection closed"):
                store.reserve([LINE], reservation_id="r0", lease_seconds=60, now=NOW)
            proxy.refuse = False
            for n in range(2):
                store.reserve([LINE], reservation_id=f"r{n + 1}", lease_seconds=60, now=NOW)
    finally:
        store.close()
    (message,) = _warnings(caplog)
    assert "maxmemory-policy allkeys-lru" in message


@pytest.mark.usefixtures("evicting")
def test_async_reservations_check_once_reached_too(
    proxy: FaultyProxy, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(proxy.url(), prefix=f"ev{uuid.uuid4().hex[:8]}")

    async def reserve() -> None:
        try:
            proxy.refuse = True
            with pytest.raises(BudgetStoreError):
                await store.areserve([LINE], reservation_id="a0", lease_seconds=60, now=NOW)
            proxy.refuse = False
            for n in range(2):
                await store.areserve([LINE], reservation_id=f"a{n + 1}", lease_seconds=60, now=NOW)
        finally:
            await store.aclose()

    with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
        asyncio.run(reserve())
    (message,) = _warnings(caplog)
    assert "maxmemory-policy allkeys-lru" in message


class _SilentServer:
    """Accepts connections and never answers (a hung Redis); counts the connections."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                self.accepted.append(self._listener.accept()[0])
            except TimeoutError:
                continue

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=5)
        self._listener.close()
        for sock in self.accepted:
            sock.close()


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_hung_server_is_asked_nothing_more_once_the_check_timed_out(api: str) -> None:
    # Each command to a server that does not answer waits out the socket timeout: a
    # reservation whose check found the server unreachable is refused then, instead of trying
    # the reserve and the release that undoes it as well (three waits on a first call).
    server = _SilentServer()
    store = RedisStore(f"redis://127.0.0.1:{server.port}/0", prefix="hung", socket_timeout=0.2)

    async def areserve() -> None:
        try:
            await store.areserve([LINE], reservation_id="a0", lease_seconds=60, now=NOW)
        finally:
            await store.aclose()

    def reserve() -> None:
        store.reserve([LINE], reservation_id="r0", lease_seconds=60, now=NOW)

    try:
        with pytest.raises(BudgetStoreError, match="Timeout"):
            asyncio.run(areserve()) if api == "async" else reserve()
    finally:
        store.close()
        server.close()
    assert len(server.accepted) == 1
