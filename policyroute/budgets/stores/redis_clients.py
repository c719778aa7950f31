"""redis-py clients for a budget store: one server, a Redis Cluster, or a Sentinel-named primary.

Every client the store makes (sync, and one asyncio client per event loop) comes from here,
configured alike:

- A burst of concurrent calls waits its turn for a connection (up to the timeout) instead of
  failing with "Too many connections": redis-py's blocking pools where it has them, and for
  its asyncio cluster client, which has none (it raises once a node has ``max_connections`` in
  use), a semaphore of that many turns per client, so per event loop. A cluster call takes one
  turn and holds at most one connection to any node at a time (the store's keys share one
  slot, and a command sent to every primary takes one connection on each), so no node is
  asked for more connections than the bound.
- One retry on a broken connection: a pooled connection that a restart or a network blip
  closed fails its next command even though Redis is back. Every script is idempotent (a
  reserve whose reply was lost finds its id held and holds nothing more), so running one again
  is safe; timeouts are not retried on one server, to bound the wait.
- READONLY is retried on a new connection too: after a failover the address names the promoted
  replica, but Redis keeps the connections of the primary it demoted, which refuse every write
  (and ran none of the script) until they are dropped. Sentinel's connections ask the
  Sentinels for the primary again when they reconnect; a cluster follows MOVED and ASK and
  reloads its slot map itself.

Example:
    >>> from policyroute.policy.redis_topology import topology
    >>> clients = RedisClients(topology("redis://cache:6379/0"), 5.0, 50)  # doctest: +SKIP
    >>> clients.sync()  # doctest: +SKIP
    Redis<BlockingConnectionPool<Connection<host=cache,port=6379,db=0>>>
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import cache
from typing import Any

from policyroute._shielded import finished_within
from policyroute.errors import BudgetStoreError
from policyroute.policy.redis_topology import Topology, cluster_query_names

__all__ = [
    "RedisClients",
    "config_replies",
    "config_target",
    "import_redis",
    "release_async",
    "release_sync",
]


def import_redis() -> Any:
    """The ``redis`` package, or :class:`~policyroute.errors.BudgetStoreError` saying how to
    install it."""
    try:
        import redis
    except ImportError as exc:
        if exc.name not in (None, "redis"):
            # Installed, but something it imports is missing or broken: installing it again
            # is not the answer, what failed is.
            raise BudgetStoreError(
                f"the redis budget store cannot import the redis package: {exc}"
            ) from exc
        raise BudgetStoreError(
            "the redis budget store needs the redis package: pip install 'policyroute[redis]'"
        ) from exc
    return redis


class RedisClients:
    """Makes the store's clients for ``topology``.

    Args:
        topology: the deployment the store URL names.
        socket_timeout: seconds before a command (or a wait for a pooled connection) fails;
            the URL's own ``?socket_timeout=`` wins.
        max_connections: connections per pool (per node in a cluster).
    """

    def __init__(self, topology: Topology, socket_timeout: float, max_connections: int) -> None:
        self.topology = topology
        self._timeout = socket_timeout
        self._max = max_connections
        redis = import_redis()
        self.errors: tuple[type[BaseException], ...] = (
            redis.exceptions.RedisError,
            redis.exceptions.RedisClusterException,
        )

    def check(self) -> None:
        """Raise ``ValueError`` or ``TypeError`` now for what every later connection would:
        a malformed URL, a query argument no connection takes."""
        redis = import_redis()
        mode = self.topology.mode
        if mode == "cluster":
            options = redis.connection.parse_url(self.topology.url)
            unknown = set(options) - cluster_query_names() - {"host", "port", "connection_class"}
            if unknown:
                raise TypeError(
                    f"redis-py's cluster clients take no argument {sorted(unknown)[0]!r}"
                )
            return
        # redis-py hands the URL's unknown query arguments (?socket_timout=2) to each
        # connection it makes, lazily: building one now (it does not connect) turns the
        # TypeError every call would meet into the store's error, at once. The async client's
        # connections take fewer (no ?ssl_validate_ocsp): the same.
        for pool in (self._sync_pool(), self._async_pool()):
            pool.connection_class(**pool.connection_kwargs)

    # ------------------------------------------------------------------ sync

    def sync(self) -> Any:
        """A new sync client (a cluster's connects to learn the slot map)."""
        redis = import_redis()
        if self.topology.mode == "cluster":
            return redis.cluster.RedisCluster(
                url=self.topology.url,
                startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in self.topology.nodes[1:]],
                connection_pool_class=redis.BlockingConnectionPool,
                **self._common(),
                retry=redis.retry.Retry(redis.backoff.NoBackoff(), 1),
            )
        return redis.Redis(connection_pool=self._sync_pool())

    def _sync_pool(self) -> Any:
        redis = import_redis()
        retry = self._retry(redis.retry.Retry)
        if self.topology.mode == "sentinel":
            return self._sentinel_pool(redis.sentinel, _blocking_sentinel_pool(), retry)
        return redis.BlockingConnectionPool.from_url(
            self.topology.url, **self._common(), retry=retry
        )

    # ------------------------------------------------------------------ asyncio

    def asyncio(self) -> Any:
        """A new asyncio client, for the running event loop (it connects on first use)."""
        redis = import_redis()
        if self.topology.mode == "cluster":
            nodes = [redis.asyncio.cluster.ClusterNode(h, p) for h, p in self.topology.nodes[1:]]
            options = {**self._common(), **redis.connection.parse_url(self.topology.url)}
            options.pop("timeout")  # no blocking pool: see the module's docstring
            if options.pop("connection_class", None) is not None:  # rediss+cluster://
                options["ssl"] = True
            return _waiting_cluster()(
                startup_nodes=nodes,
                **options,
                retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 1),
                turn_timeout=self._timeout,
            )
        return redis.asyncio.Redis(connection_pool=self._async_pool())

    def _async_pool(self) -> Any:
        redis = import_redis()
        retry = self._retry(redis.asyncio.retry.Retry)
        if self.topology.mode == "sentinel":
            pool_class = _blocking_async_sentinel_pool()
            return self._sentinel_pool(redis.asyncio.sentinel, pool_class, retry)
        pool_class = redis.asyncio.BlockingConnectionPool
        return pool_class.from_url(self.topology.url, **self._common(), retry=retry)

    # ------------------------------------------------------------------ shared

    def _common(self) -> dict[str, Any]:
        return {
            "max_connections": self._max,
            "timeout": self._timeout,
            "socket_timeout": self._timeout,
            "socket_connect_timeout": self._timeout,
        }

    def _retry(self, retry_class: Any) -> Any:
        redis = import_redis()
        errors = (redis.exceptions.ConnectionError, redis.exceptions.ReadOnlyError)
        return retry_class(redis.backoff.NoBackoff(), 1, supported_errors=errors)

    def _sentinel_pool(self, module: Any, pool_class: Any, retry: Any) -> Any:
        """A pool of connections to the primary the Sentinels name (asked on each connect)."""
        redis = import_redis()
        options = {**self._common(), **redis.connection.parse_url(self.topology.url)}
        options.pop("host", None)
        options.pop("port", None)
        tls = options.pop("connection_class", None) is not None
        timeouts = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout")}
        # Retried as the data connections are (once, at once): redis-py's default retries a
        # Sentinel that hangs up three more times, sleeping up to 1, 2 and 4 s between tries.
        sentinel_options = {**timeouts, "retry": retry, **self.topology.sentinel}
        if tls:
            sentinel_options["ssl"] = True
            sentinel_options.update({k: v for k, v in options.items() if k.startswith("ssl_")})
        sentinel = module.Sentinel(list(self.topology.nodes), sentinel_kwargs=sentinel_options)
        return pool_class(self.topology.service, sentinel, ssl=tls, retry=retry, **options)


@cache
def _waiting_cluster() -> type:
    """redis-py's asyncio cluster client, whose calls wait for one of ``max_connections``
    turns (up to ``turn_timeout`` seconds) instead of failing at a node's connection bound."""
    redis = import_redis()
    exceptions = redis.exceptions
    # redis-py 5.0 raised a plain ConnectionError ("Too many connections") there.
    no_connection = getattr(exceptions, "MaxConnectionsError", exceptions.ConnectionError)

    base: Any = redis.asyncio.cluster.RedisCluster

    class WaitingRedisCluster(base):  # type: ignore[misc]
        def __init__(self, *args: Any, turn_timeout: float | None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            bound = kwargs["max_connections"]
            # Made here, in the loop the client is made for (LoopClients makes one per loop);
            # an asyncio.Semaphore binds to the loop that first waits on it.
            self._policyroute_turns = asyncio.Semaphore(bound)
            self._policyroute_wait = (bound, turn_timeout)

        async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
            turns = self._policyroute_turns
            bound, wait = self._policyroute_wait
            if turns.locked() and wait is not None:
                if not await _turn_within(turns, wait):
                    raise no_connection(
                        f"no connection free within {wait:g} s: all {bound} (max_connections)"
                        " were in use"
                    )
            else:
                await turns.acquire()  # a free turn is taken without suspending
            try:
                return await super().execute_command(*args, **kwargs)
            finally:
                turns.release()

    return WaitingRedisCluster


async def _turn_within(turns: asyncio.Semaphore, seconds: float) -> bool:
    """Whether a turn of ``turns`` was taken within ``seconds``; one taken as the deadline
    passed is given back. The deadline is :func:`~policyroute._shielded.finished_within`'s:
    a store call made for the accounting runs as its work, where ``asyncio.wait_for`` would
    cancel the caller instead of the wait."""
    acquire = asyncio.ensure_future(turns.acquire())

    def given_up(task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is None:
            turns.release()

    if not await finished_within(acquire, seconds, given_up):
        return False
    acquire.result()
    return True


def _blocking_sentinel_pool() -> Any:
    redis = import_redis()
    return _mix(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool)


def _blocking_async_sentinel_pool() -> Any:
    redis = import_redis()
    return _mix(redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool)


@cache
def _mix(sentinel_pool: type, blocking_pool: type) -> type:
    """redis-py's Sentinel pool with its blocking pool's waiting for a free connection."""
    return type("Blocking" + sentinel_pool.__name__, (sentinel_pool, blocking_pool), {})


def config_replies(reply: Any) -> Iterable[Any]:
    """The ``CONFIG GET`` reply of each server ``reply`` holds: a cluster answers per node."""
    if reply and all(isinstance(v, dict) for v in reply.values()):
        return list(reply.values())
    return [reply]


def release_sync(client: Any) -> None:
    """Close a sync client and disconnect its pools: redis-py closes a pool it was handed only
    when it made it itself, or leaves its sockets to the garbage collector (a late
    ResourceWarning)."""
    client.close()
    nodes = client.get_nodes() if hasattr(client, "get_nodes") else ()
    pools = [n.redis_connection.connection_pool for n in nodes if n.redis_connection]
    pool = getattr(client, "connection_pool", None)
    sentinels = getattr(getattr(pool, "sentinel_manager", None), "sentinels", [])
    for each in pools or [client.connection_pool]:
        each.disconnect()
    for sentinel in sentinels:
        sentinel.close()
        sentinel.connection_pool.disconnect()


async def release_async(client: Any) -> None:
    """Close an asyncio client, its pool, and the connections its Sentinels were asked on."""
    await client.aclose()
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return  # a cluster's client closes its nodes' connections itself
    await pool.disconnect()
    for sentinel in getattr(getattr(pool, "sentinel_manager", None), "sentinels", ()):
        await sentinel.aclose()


def config_target(client: Any) -> dict[str, Any]:
    """Keywords that send ``CONFIG GET`` to every primary of a cluster (nothing otherwise)."""
    return {"target_nodes": client.PRIMARIES} if hasattr(client, "get_nodes") else {}
