"""An HTTP/1.1 server on its own asyncio event loop in a daemon thread.

It reads requests off keep-alive connections and hands each to a ``dispatch`` coroutine;
what to answer is the caller's business (:class:`~policyroute.testing.FakeProvider`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
from collections.abc import Awaitable, Callable

from policyroute.testing import _openai_wire as openai_wire
from policyroute.testing._http import HTTPError, HTTPRequest, full_response, read_request

Dispatch = Callable[[HTTPRequest, asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]
"""Answers one request (with the connection's number); returns whether to keep the connection."""

BACKLOG = 2048
"""Listen backlog. asyncio's default (100) drops the SYNs of a burst of clients, which then
wait out TCP's 1 s (then 2 s...) retransmission timer."""


class LoopServer:
    """Serves ``dispatch`` on ``host``:``port`` (0: ephemeral) from a background thread,
    over TLS with the server context ``tls`` when one is given.

    Example:
        >>> async def answer(request, reader, writer, connection):
        ...     writer.write(full_response(200, b"{}"))
        ...     return True
        >>> server = LoopServer("127.0.0.1", 0, answer)
        >>> server.start() > 0
        True
        >>> server.stop(1.0)
    """

    def __init__(
        self, host: str, port: int, dispatch: Dispatch, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self._host = host
        self._tls = tls
        self._requested_port = port
        self._dispatch = dispatch
        self._lifecycle = threading.Lock()
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._connection_count = 0
        self.port: int | None = None

    @property
    def running(self) -> bool:
        """Whether the server thread is started."""
        return self._thread is not None

    @property
    def open_connections(self) -> int:
        """How many client connections are open now."""
        return len(self._connections)

    def start(self) -> int:
        """Bind and serve; return the bound port. Raises if running or the bind fails."""
        with self._lifecycle:
            if self._thread is not None:
                raise RuntimeError("FakeProvider is already running")
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            failure: list[BaseException] = []
            thread = threading.Thread(
                target=self._run, args=(loop, ready, failure), name="FakeProvider", daemon=True
            )
            thread.start()
            ready.wait()
            if failure:
                thread.join()
                raise failure[0]
            self._loop, self._thread = loop, thread
            assert self.port is not None
            return self.port

    def stop(self, timeout: float) -> None:
        """Close every connection at once, stalled ones included, and end the thread."""
        with self._lifecycle:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                return
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                future.result(timeout)
            except concurrent.futures.TimeoutError:
                future.cancel()
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._loop = self._thread = None
            self.port = None

    def wait_for_connections(self, count: int, timeout: float) -> None:
        """Block until at most ``count`` connections are open, else raise ``TimeoutError``."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._connections) <= count, timeout):
                raise TimeoutError(f"{len(self._connections)} connection(s) open, wanted {count}")

    def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        ready: threading.Event,
        failure: list[BaseException],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(
                        self._on_connection,
                        self._host,
                        self._requested_port,
                        limit=256 * 1024,
                        reuse_address=True,
                        backlog=BACKLOG,
                        ssl=self._tls,
                    )
                )
                self.port = int(self._server.sockets[0].getsockname()[1])
            except BaseException as exc:
                failure.append(exc)
                return
            finally:
                ready.set()
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._connections.values()):
            writer.transport.abort()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        self._connection_count += 1
        connection = self._connection_count
        try:
            while True:
                try:
                    request = await read_request(reader, writer)
                except HTTPError as exc:
                    body = openai_wire.bad_request_error(exc.detail, None)
                    writer.write(full_response(exc.status, body, keep_alive=False))
                    await writer.drain()
                    break
                if request is None:
                    break
                if (
                    not await self._dispatch(request, reader, writer, connection)
                    or not request.keep_alive
                ):
                    break
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # Only _shutdown cancels these tasks. Ending normally matters on Python 3.11,
            # whose start_server callback calls task.exception() and logs a cancelled task.
            pass
        finally:
            writer.close()
            with self._changed:
                self._connections.pop(task, None)
                self._changed.notify_all()
