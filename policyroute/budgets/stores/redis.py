"""A budget store in Redis, for processes on many hosts: one server, a Cluster, or Sentinel.

Each operation is one Lua script run atomically by the server (registered once, then called
by SHA): a reservation checks and holds every line in one step, reclaims expired leases on the
way, and settlement records spend and threshold crossings in the same step. All keys share the
hash tag ``{prefix}``, so in a Redis Cluster they live in one slot and multi-key scripts work.
See :mod:`policyroute.budgets.stores._redis_lua` for the key layout.

Leases and rolling windows are timed by the Redis server's clock (``TIME``, read inside each
script), not by the ``now`` the caller passes: hosts whose clocks disagree still agree on which
reservations are live, which a lease renewal extends, which are reclaimed, and which rolling
spend still counts. ``now`` only turns a window's end (an instant by the caller's clock) into a
time to live. Calendar windows (which day, week or month a call is charged to) are chosen by the
caller's clock, before the reservation reaches the server.

Any Redis failure (connection refused, timeout, script error) raises
:class:`~policyroute.errors.BudgetStoreError`: the call is refused, never let through.
With ``?wait_replicas=N`` in the URL every write also waits for ``N`` replicas to acknowledge
it, and a reservation too few acknowledged is given back and refused the same way
(:mod:`~policyroute.budgets.stores.redis_replicas`).

Example:
    >>> store = RedisStore.from_url("redis://localhost:6379/0", prefix="myapp")  # doctest: +SKIP
    >>> result = store.reserve(lines, reservation_id="r1", lease_seconds=300, now=now)
    ... # doctest: +SKIP
    >>> result.ok  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from policyroute.budgets.stores._redis_calls import (
    line_state,
    line_states,
    renew_args,
    reserve_call,
    reserve_result,
    settle_args,
    text,
)
from policyroute.budgets.stores._redis_lua import (
    EXPIRED,
    RECLAIM,
    RENEW,
    RESERVE,
    SETTLE,
    STATE,
)
from policyroute.budgets.stores._redis_scripts import AsyncScript, SyncScript
from policyroute.budgets.stores.base import (
    LineState,
    ReserveLine,
    ReserveResult,
    expired_by_key,
    from_nano,
)
from policyroute.budgets.stores.loop_clients import LoopClients
from policyroute.budgets.stores.redis_clients import (
    RedisClients,
    config_replies,
    config_target,
    import_redis,
    release_async,
    release_sync,
)
from policyroute.budgets.stores.redis_eviction import warn_if_evicting
from policyroute.budgets.stores.redis_replicas import ReplicaWait
from policyroute.budgets.stores.redis_url import redacted_url, scrub
from policyroute.errors import BudgetStoreError
from policyroute.policy.redis_topology import (
    DEFAULT_SOCKET_TIMEOUT,
    topology,
    wait_timeout_problem,
)

__all__ = ["RedisStore", "redacted_url"]

_GLOB_SPECIALS = str.maketrans({c: "\\" + c for c in "*?[]\\"})
_SCRIPTS = (
    ("reserve", RESERVE),
    ("settle", SETTLE),
    ("reclaim", RECLAIM),
    ("renew", RENEW),
    ("state", STATE),
    ("expired", EXPIRED),
)


# How redis-py names a Sentinel that failed ("No master found for 'svc' : <redis.client.Redis(
# <...ConnectionPool(<...Connection(db=0,...,host=H,port=P,...)>)>)> - network:ConnectionError"):
# its client's repr, a thousand characters of settings and object addresses; its host and port
# say which Sentinel it was.
_CLIENT_REPR = re.compile(
    r"<redis\.(?:asyncio\.)?client\.Redis\(.*?,host=([^,]*),port=(\d+),.*?\)>\)>\)>"
)


class RedisStore:
    """Budget state in Redis, shared by every host that enforces the policy.

    Args:
        url: a ``redis://``, ``rediss://`` or ``unix://`` URL for one server,
            ``redis+cluster://`` for a Redis Cluster or ``redis+sentinel://`` for the primary
            Sentinels name (:mod:`~policyroute.policy.redis_topology`).
        prefix: namespace of every key (wrapped in a hash tag).
        socket_timeout: seconds before a Redis command (or a wait for a pooled connection)
            counts as failed.
        max_connections: connections per pool (one pool for sync, one for async calls; in a
            cluster, per node).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "policyroute",
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        max_connections: int = 50,
    ):
        import_redis()
        self.url = url
        self.prefix = prefix
        self.where = redacted_url(url)
        self._p = "{" + prefix + "}:"
        try:
            found = topology(url)
            waits = wait_timeout_problem(found, socket_timeout)
            if waits is not None:
                raise ValueError(f"the URL {waits}")
            self._clients = RedisClients(found, socket_timeout, max_connections)
            self._clients.check()
        except (ValueError, TypeError) as exc:  # the URL itself is malformed
            raise self._fail(exc) from exc
        self._wait = (
            ReplicaWait(found.wait_replicas, found.wait_timeout) if found.wait_replicas else None
        )
        self._exc = self._clients.errors
        # Made on first use: a cluster's sync client connects as it is made, to learn the slots.
        self._sync_made: tuple[Any, dict[str, SyncScript]] | None = None
        self._sync_lock = threading.Lock()
        # One async client per event loop: redis-py's async connections belong to the loop
        # that made them (see loop_clients).
        self._async_clients = LoopClients(self._make_async, release_async)
        self._eviction_checked = False

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "policyroute") -> RedisStore:
        """A store on the Redis at ``url`` (connections open lazily)."""
        return cls(url, prefix=prefix)

    def __repr__(self) -> str:
        return f"RedisStore({self.where!r}, prefix={self.prefix!r})"

    @property
    def _sync(self) -> Any:
        return self._sync_client()[0]

    @property
    def _scripts(self) -> dict[str, SyncScript]:
        return self._sync_client()[1]

    def _sync_client(self) -> tuple[Any, dict[str, SyncScript]]:
        made = self._sync_made
        if made is None:
            with self._sync_lock:
                made = self._sync_made
                if made is None:
                    client = self._clients.sync()
                    made = client, {name: SyncScript(client, src) for name, src in _SCRIPTS}
                    self._sync_made = made
        return made

    def _maybe_ran(self, exc: BaseException) -> bool:
        """Whether a failed reserve may have been run by Redis all the same.

        A reply lost to a reset connection or a timeout leaves the reservation held, and the
        refused call would then be charged its worst case when the lease runs out: such a
        reserve is released at once (by id, so releasing one that never ran changes nothing).
        One refused for want of a free connection was never sent, and a release would only
        wait out the same bound again. When writes wait for replicas, an error reply may be
        ``WAIT``'s (an ACL without it), the script having run: released too.
        """
        exceptions = import_redis().exceptions
        if self._wait is not None and isinstance(exc, exceptions.ResponseError):
            return True
        no_connection = getattr(exceptions, "MaxConnectionsError", ())
        return self._unreachable(exc) and not isinstance(exc, no_connection)

    @staticmethod
    def _unreachable(exc: BaseException) -> bool:
        """Whether ``exc`` says the server did not answer (refused, reset, timed out)."""
        redis = import_redis()
        return isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError))

    def _check_eviction(self, config: Any) -> None:
        """Warn if the server may evict, given its ``CONFIG GET maxmemory*`` reply or error.

        Once per store. A server that refuses CONFIG (managed services) is not checked; one
        that could not be reached is checked on a later reservation, and this one is refused
        now: nothing was reserved, and a reserve (and the release that would undo it) would
        only wait out the socket timeout again on a server that does not answer.
        """
        if isinstance(config, BaseException):
            # A cluster none of whose listed nodes answered fails as RedisClusterException
            # ("cannot be connected"), not ConnectionError: as unreachable, it is checked later.
            cluster_down = isinstance(config, import_redis().exceptions.RedisClusterException)
            if self._unreachable(config) or cluster_down:
                raise self._fail(config) from config
            config = {}
        self._eviction_checked = True
        for reply in config_replies(config or {}):
            warn_if_evicting(reply or {}, repr(self))

    def _fail(self, exc: BaseException | str) -> BudgetStoreError:
        # redis-py may quote part of a password it misread as the port or a socket path.
        why = _CLIENT_REPR.sub(r"\1:\2", scrub(str(exc), self.url))
        return BudgetStoreError(f"redis budget store {self.where} (prefix {self.prefix}): {why}")

    def _unreplicated(self, short: str) -> BudgetStoreError:
        return self._fail(
            f"the reservation {short}, so a failover could lose it: it was given back and"
            " the call refused"
        )

    def _run(
        self, name: str, keys: Sequence[str], args: Sequence[str], *, wait: bool = True
    ) -> tuple[Any, int | None]:
        """A script's reply, and how many replicas acknowledged it (``None``: not asked)."""
        script = self._scripts[name]
        if self._wait is None or not wait:
            return script(keys=keys, args=args), None
        return script.waiting(self._wait.replicas, self._wait.milliseconds, keys=keys, args=args)

    def _warn(self, write: str, acked: int | None) -> None:
        if self._wait is not None:
            self._wait.warn(write, acked, repr(self))

    # ------------------------------------------------------------------ sync API

    def reserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.reserve`."""
        keys, args = reserve_call(self._p, lines, reservation_id, lease_seconds, now)
        if not self._eviction_checked:
            try:
                client = self._sync
                config = client.config_get("maxmemory*", **config_target(client))
            except self._exc as exc:
                config = exc
            self._check_eviction(config)
        try:
            reply, acked = self._run("reserve", keys, args)
        except self._exc as exc:
            if self._maybe_ran(exc):
                self._give_back(reservation_id)
            raise self._fail(exc) from exc
        result = reserve_result(lines, reply)
        short = self._wait.shortfall(acked) if self._wait is not None else None
        if short is not None and result.ok:
            self._give_back(reservation_id)
            raise self._unreplicated(short)
        return result

    def _give_back(self, reservation_id: str) -> None:
        """Release a reservation the caller is refused (not waiting for replicas again)."""
        try:
            self._settle(reservation_id, Decimal(0), wait=False)
        except BudgetStoreError:
            pass  # unreachable: the lease reclaims it

    def settle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.settle`."""
        return self._settle(reservation_id, actual, wait=True)

    def _settle(self, reservation_id: str, actual: Decimal, *, wait: bool) -> list[LineState]:
        args = settle_args(self._p, reservation_id, actual)
        try:
            reply, acked = self._run("settle", [self._p + "res"], args, wait=wait)
        except self._exc as exc:
            raise self._fail(exc) from exc
        self._warn("a settlement", acked)
        return line_states(reply)

    def release(self, reservation_id: str, *, now: float | None = None) -> None:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.release`."""
        self.settle(reservation_id, Decimal(0), now=time.time() if now is None else now)

    def renew(self, reservation_id: str, lease_seconds: float, *, now: float) -> bool:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.renew`."""
        args = renew_args(self._p, reservation_id, lease_seconds)
        try:
            reply, acked = self._run("renew", [self._p + "res"], args)
        except self._exc as exc:
            raise self._fail(exc) from exc
        self._warn("a lease renewal", acked)
        return bool(int(reply))

    def reclaim_expired(self, now: float) -> int:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.reclaim_expired`."""
        try:
            reply, acked = self._run("reclaim", [self._p + "res"], [self._p])
        except self._exc as exc:
            raise self._fail(exc) from exc
        self._warn("a reclaim of expired leases", acked)
        return int(reply)

    def state(self, key: str, *, now: float) -> LineState:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.state`; a rolling window's
        spend is what counts at the server's time, not at ``now``."""
        keys = [self._p + "line:" + key, self._p + "spend:" + key]
        try:
            reply, _ = self._run("state", keys, [], wait=False)
        except self._exc as exc:
            raise self._fail(exc) from exc
        return line_state(key, reply)

    def scan(self, prefix: str, *, now: float) -> list[LineState]:
        """See :meth:`~policyroute.budgets.stores.base.BudgetStore.scan`."""
        head = self._p + "line:"
        pattern = head.translate(_GLOB_SPECIALS) + prefix.translate(_GLOB_SPECIALS) + "*"
        try:
            # A cluster scans every primary: a slot may move while the scan runs, so a key
            # can be seen twice.
            keys = sorted({text(k)[len(head) :] for k in self._sync.scan_iter(match=pattern)})
        except self._exc as exc:
            raise self._fail(exc) from exc
        states = [self.state(key, now=now) for key in keys]
        expired = self._expired(prefix)
        return [
            replace(s, expired=from_nano(expired.get(s.key, 0)))
            for s in states
            if s.limit or s.spent or s.reserved
        ]

    def _expired(self, prefix: str) -> dict[str, int]:
        """Nano-dollars held per line by reservations whose lease ran out by the server's
        clock."""
        try:
            raws, _ = self._run("expired", [self._p + "res"], [self._p], wait=False)
        except self._exc as exc:
            raise self._fail(exc) from exc
        # Amounts are strings in the reservation's JSON (Lua keeps them exact that way).
        pairs = (((str(k), int(a)) for k, a in json.loads(text(raw))) for raw in raws)
        return expired_by_key(pairs, prefix)

    def close(self) -> None:
        """Close the connection pools."""
        with self._sync_lock:
            made, self._sync_made = self._sync_made, None
        if made is not None:
            release_sync(made[0])

    # ------------------------------------------------------------------ async API

    def _make_async(self) -> tuple[Any, dict[str, Any]]:
        client = self._clients.asyncio()
        return client, {name: AsyncScript(client, src) for name, src in _SCRIPTS}

    async def _arun(
        self, name: str, keys: Sequence[str], args: Sequence[str], *, wait: bool = True
    ) -> tuple[Any, int | None]:
        """Async twin of :meth:`_run`."""
        _, scripts = await self._async_clients.get()
        script: AsyncScript = scripts[name]
        if self._wait is None or not wait:
            return await script(keys=keys, args=args), None
        replicas, ms = self._wait.replicas, self._wait.milliseconds
        return await script.waiting(replicas, ms, keys=keys, args=args)

    async def areserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        """Async twin of :meth:`reserve`."""
        client, _ = await self._async_clients.get()
        keys, args = reserve_call(self._p, lines, reservation_id, lease_seconds, now)
        if not self._eviction_checked:
            try:
                config = await client.config_get("maxmemory*", **config_target(client))
            except self._exc as exc:
                config = exc
            self._check_eviction(config)
        try:
            reply, acked = await self._arun("reserve", keys, args)
        except self._exc as exc:
            if self._maybe_ran(exc):
                await self._agive_back(reservation_id)
            raise self._fail(exc) from exc
        result = reserve_result(lines, reply)
        short = self._wait.shortfall(acked) if self._wait is not None else None
        if short is not None and result.ok:
            await self._agive_back(reservation_id)
            raise self._unreplicated(short)
        return result

    async def _agive_back(self, reservation_id: str) -> None:
        """Async twin of :meth:`_give_back`."""
        try:
            await self._asettle(reservation_id, Decimal(0), wait=False)
        except BudgetStoreError:
            pass  # unreachable: the lease reclaims it

    async def asettle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        """Async twin of :meth:`settle`."""
        return await self._asettle(reservation_id, actual, wait=True)

    async def _asettle(
        self, reservation_id: str, actual: Decimal, *, wait: bool
    ) -> list[LineState]:
        args = settle_args(self._p, reservation_id, actual)
        try:
            reply, acked = await self._arun("settle", [self._p + "res"], args, wait=wait)
        except self._exc as exc:
            raise self._fail(exc) from exc
        self._warn("a settlement", acked)
        return line_states(reply)

    async def arelease(self, reservation_id: str, *, now: float | None = None) -> None:
        """Async twin of :meth:`release`."""
        await self.asettle(reservation_id, Decimal(0), now=time.time() if now is None else now)

    async def arenew(self, reservation_id: str, lease_seconds: float, *, now: float) -> bool:
        """Async twin of :meth:`renew`."""
        args = renew_args(self._p, reservation_id, lease_seconds)
        try:
            reply, acked = await self._arun("renew", [self._p + "res"], args)
        except self._exc as exc:
            raise self._fail(exc) from exc
        self._warn("a lease renewal", acked)
        return bool(int(reply))

    async def areclaim_expired(self, now: float) -> int:
        """Async twin of :meth:`reclaim_expired`."""
        try:
            reply, acked = await self._arun("reclaim", [self._p + "res"], [self._p])
        except self._exc as exc:
            raise self._fail(exc) from exc
        self._warn("a reclaim of expired leases", acked)
        return int(reply)

    async def aclose(self) -> None:
        """Close the sync connection pool and this event loop's async one (those of loops
        already closed went with them)."""
        await self._async_clients.close()
        self.close()
