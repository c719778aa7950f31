"""Running the Redis store's Lua scripts by SHA, or by their source where the server lacks them.

A script is sent by SHA (``EVALSHA``), its source only when the server answers ``NOSCRIPT``
(a restart, ``SCRIPT FLUSH``, another server behind the same address): then ``EVAL`` runs it
and caches it there for the next ``EVALSHA``. redis-py's own scripts instead load the source
(``SCRIPT LOAD``) and send the SHA again, which fails when that second command is retried on a
new connection to another server: after a failover, the demoted primary loads the script,
refuses to run it (``READONLY``), and the retry reaches the promoted replica, which has never
seen it. ``EVAL`` carries the source wherever the retry lands. ``NOSCRIPT`` means nothing ran,
so sending the script again never runs it twice.

:meth:`SyncScript.waiting` (and its async twin) sends ``WAIT numreplicas timeout`` right
behind the script, in one pipeline: ``WAIT`` counts the replicas that acknowledged the last
write of the connection it is sent on, so it must follow the script on that connection.

Example:
    >>> import redis  # doctest: +SKIP
    >>> script = SyncScript(redis.Redis(), "return ARGV[1]")  # doctest: +SKIP
    >>> script(keys=[], args=["hi"])  # doctest: +SKIP
    b'hi'
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

__all__ = ["AsyncScript", "SyncScript"]


def _no_script() -> type[BaseException]:
    from redis.exceptions import NoScriptError

    return NoScriptError


class SyncScript:
    """A Lua script on a sync redis-py client; called with ``keys`` and ``args``."""

    def __init__(self, client: Any, source: str) -> None:
        self._client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, *, keys: Sequence[str], args: Sequence[str]) -> Any:
        try:
            return self._client.evalsha(self.sha, len(keys), *keys, *args)
        except _no_script():
            return self._client.eval(self.source, len(keys), *keys, *args)

    def waiting(
        self, replicas: int, timeout_ms: int, *, keys: Sequence[str], args: Sequence[str]
    ) -> tuple[Any, int]:
        """The script's reply, and how many replicas acknowledged it within ``timeout_ms``
        (at most ``replicas``: ``WAIT`` returns once that many did)."""
        try:
            return self._piped("EVALSHA", self.sha, replicas, timeout_ms, keys, args)
        except _no_script():
            return self._piped("EVAL", self.source, replicas, timeout_ms, keys, args)

    def _piped(
        self,
        command: str,
        script: str,
        replicas: int,
        timeout_ms: int,
        keys: Sequence[str],
        args: Sequence[str],
    ) -> tuple[Any, int]:
        with self._client.pipeline(transaction=False) as pipe:
            pipe.execute_command(command, script, len(keys), *keys, *args)
            pipe.execute_command("WAIT", replicas, timeout_ms)
            reply, acked = pipe.execute()
        return reply, int(acked)


class AsyncScript:
    """A Lua script on an async redis-py client; awaited with ``keys`` and ``args``."""

    def __init__(self, client: Any, source: str) -> None:
        self._client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, *, keys: Sequence[str], args: Sequence[str]) -> Any:
        try:
            return await self._client.evalsha(self.sha, len(keys), *keys, *args)
        except _no_script():
            return await self._client.eval(self.source, len(keys), *keys, *args)

    async def waiting(
        self, replicas: int, timeout_ms: int, *, keys: Sequence[str], args: Sequence[str]
    ) -> tuple[Any, int]:
        """Async twin of :meth:`SyncScript.waiting`."""
        try:
            return await self._piped("EVALSHA", self.sha, replicas, timeout_ms, keys, args)
        except _no_script():
            return await self._piped("EVAL", self.source, replicas, timeout_ms, keys, args)

    async def _piped(
        self,
        command: str,
        script: str,
        replicas: int,
        timeout_ms: int,
        keys: Sequence[str],
        args: Sequence[str],
    ) -> tuple[Any, int]:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.execute_command(command, script, len(keys), *keys, *args)
            pipe.execute_command("WAIT", replicas, timeout_ms)
            reply, acked = await pipe.execute()
        return reply, int(acked)
