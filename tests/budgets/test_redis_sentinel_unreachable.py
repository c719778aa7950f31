"""A Sentinel URL whose Sentinels do not answer fails within the store's bounds.

redis-py's clients retry a failed command three more times, sleeping up to 1, 2 and 4 s
between tries, unless told otherwise: the store's connections to the Sentinels must retry as
its data connections do (once, at once), or every call made while the Sentinels are down waits
seconds past ``socket_timeout`` before it is refused.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyroute.budgets.stores.redis import RedisStore
from policyroute.cli import main
from policyroute.errors import BudgetStoreError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def hanging_up() -> Iterator[tuple[int, list[int]]]:
    """A loopback port that accepts each connection and closes it at once (a Sentinel that
    is going down); its port and how many connections it took."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    taken = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            taken[0] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], taken
    finally:
        stop.set()
        thread.join()
        listener.close()


@pytest.mark.parametrize("api", ["sync", "async"])
def test_sentinels_that_hang_up_are_asked_once_more_and_no_more(
    hanging_up: tuple[int, list[int]], api: str
) -> None:
    port, taken = hanging_up
    store = RedisStore(f"redis+sentinel://:pw@127.0.0.1:{port}/svc/0", socket_timeout=2.0)

    async def state() -> None:
        try:
            await store.areclaim_expired(0.0)
        finally:
            await store.aclose()

    def reclaim() -> None:
        if api == "sync":
            store.reclaim_expired(0.0)
        else:
            asyncio.run(state())

    with pytest.raises(BudgetStoreError, match="No master found for 'svc'"):
        reclaim()
    store.close()
    # The data connection tries twice (a broken connection is retried once), and each try
    # asks the Sentinel twice: once, and once more on a new connection.
    assert taken[0] <= 4


def test_the_error_names_each_sentinel_by_host_and_port_not_by_client_repr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # redis-py names each Sentinel that failed by its client's repr: a thousand characters of
    # connection settings and object addresses per Sentinel, in budget status's one line.
    ports = []
    for _ in range(2):
        with socket.socket() as probe:  # a port nothing listens on once it is closed
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "policyroute: 1\nname: sentinels\nmodels: {m: {model: openai/gpt-4o-mini}}\n"
        "budgets: [{name: daily, limit_usd: 1, window: day}]\nroutes: [{name: r, to: m}]\n"
        f'store: {{backend: redis, url: "redis+sentinel://{hosts}/svc"}}\n',
        encoding="utf-8",
    )

    assert main(["budget", "status", str(policy)]) == 1

    err = capsys.readouterr().err
    assert "redis.client.Redis" not in err
    assert " object at 0x" not in err
    assert (
        f"No master found for 'svc' : 127.0.0.1:{ports[0]} - network:ConnectionError,"
        f" 127.0.0.1:{ports[1]} - network:ConnectionError\n"
    ) in err
