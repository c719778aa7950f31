"""A fake OpenAI / Anthropic compatible LLM provider served on 127.0.0.1.

:class:`FakeProvider` runs a small HTTP/1.1 server (keep-alive, chunked SSE streaming) on
its own asyncio event loop in a daemon thread, so synchronous and asynchronous clients can
use it alike. Each request is answered by the next scripted step for its model, else the
model's default step, else generated default content, and is recorded.

Example:
    >>> import httpx
    >>> with FakeProvider() as fp:
    ...     fp.script("gpt-x", Reply(text="hi"), Fault.status(429, retry_after=1))
    ...     body = {"model": "gpt-x", "messages": [{"role": "user", "content": "yo"}]}
    ...     url = fp.openai_base + "/chat/completions"
    ...     first = httpx.post(url, json=body).json()["choices"][0]["message"]["content"]
    ...     second = httpx.post(url, json=body).status_code
    ...     third = httpx.post(url, json=body).json()["choices"][0]["message"]["content"]
    >>> first, second, third
    ('hi', 429, 'Hello from fake-gpt-x: yo')
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from policyroute.testing import _anthropic_wire as anthropic_wire
from policyroute.testing import _openai_wire as openai_wire
from policyroute.testing._faults import Fault, StatusFault, Step
from policyroute.testing._http import HTTPRequest, full_response
from policyroute.testing._recorded import RecordedRequest, Source
from policyroute.testing._responder import Responder
from policyroute.testing._server import LoopServer
from policyroute.testing._steps import Reply
from policyroute.testing._synth import Api, InvalidRequest
from policyroute.testing._tls import LocalTLS

ANY_MODEL = "*"
"""Model key matching every model, for :meth:`FakeProvider.script` and friends."""

_ROUTES: dict[str, Api] = {
    "/v1/chat/completions": "openai",
    "/chat/completions": "openai",
    "/v1/messages": "anthropic",
    "/messages": "anthropic",
}


@dataclass(slots=True)
class _Outage:
    fault: Fault
    remaining: int | None
    until: float | None

    def take(self, now: float) -> bool:
        if self.until is not None:
            return now < self.until
        if self.remaining is not None and self.remaining > 0:
            self.remaining -= 1
            return True
        return False


class FakeProvider:
    """A scriptable fake LLM API server on ``127.0.0.1`` (OpenAI and Anthropic wire formats).

    Endpoints: ``POST /v1/chat/completions`` (also ``/chat/completions``) and
    ``POST /v1/messages`` (also ``/messages``), JSON or SSE (``"stream": true``); plus
    ``GET /v1/models`` and ``GET /health``. Point litellm at it with
    ``api_base=fp.openai_base`` for ``openai/<model>`` and ``api_base=fp.anthropic_base``
    for ``anthropic/<model>`` (litellm appends ``/v1/messages`` itself).

    Answers are chosen per request by the body's ``model``: an active outage
    (:meth:`schedule_outage`), else the next queued step (:meth:`script`), else the
    default step (:meth:`set_default`), else generated content. Each lookup tries the exact
    model first, then :data:`ANY_MODEL` (``"*"``).

    Generated content is ``"Hello from fake-<model>: <first 5 words of the last user
    message>"``; a JSON object when ``response_format`` (or Anthropic ``output_format``)
    asks for JSON, built from the JSON schema if there is one; a call of the first or
    named tool (arguments from its schema) when ``tool_choice`` forces one. ``stop`` cuts
    it and ``max_tokens`` truncates it to that many words with finish reason ``"length"``.
    Usage is deterministic: prompt tokens are the words of every message (and Anthropic
    ``system``) plus 3 per message, completion tokens the words of the reply text plus,
    per tool call, 1 + the words of its arguments JSON.

    The server binds ``host``:``port`` (port 0: an ephemeral port) and runs on its own
    thread, so it serves sync and async clients alike; use it with ``with`` or
    ``async with``, or :meth:`start` / :meth:`stop`. ``tls`` serves HTTPS instead of plain
    HTTP, as every real provider does: ``True`` makes a certificate authority for the
    provider (:attr:`tls`), a :class:`~policyroute.testing.LocalTLS` shares one between
    providers, and an ``ssl.SSLContext`` is used as the server's as it is (its certificate
    is the caller's to trust); ``False`` or ``None``: plain HTTP. ``max_recorded`` bounds how many
    recorded requests are kept (oldest dropped first), for long benchmarks. Bodies it cannot
    answer (not JSON, no string ``model``, ``messages`` or ``tools`` not arrays, ``n``
    outside 1-128) get a 400 in the wire format of the path.

    Example:
        >>> import httpx
        >>> with FakeProvider() as fp:
        ...     fp.set_default("*", Reply(text="pong"))
        ...     msg = {"role": "user", "content": "a b"}
        ...     r = httpx.post(fp.openai_base + "/chat/completions",
        ...                    json={"model": "m", "messages": [msg]})
        ...     r.json()["choices"][0]["message"]["content"], r.json()["usage"]["prompt_tokens"]
        ('pong', 5)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_recorded: int | None = None,
        tls: bool | LocalTLS | ssl.SSLContext | None = False,
    ) -> None:
        self._host = host
        self._tls, context = _server_tls(tls)
        self._scheme = "http" if context is None else "https"
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._queues: dict[str, deque[Step]] = {}
        self._defaults: dict[str, Step] = {}
        self._outages: dict[str, _Outage] = {}
        self._requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._recorded_total = 0
        self._attempts: dict[str, int] = {}
        self._responder = Responder()
        self._server = LoopServer(host, port, self._dispatch, tls=context)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeProvider:
        """Start serving in a background thread; returns ``self``. Raises if already running.

        Example:
            >>> fp = FakeProvider().start()
            >>> fp.base_url.startswith("http://127.0.0.1:")
            True
            >>> fp.stop()
        """
        self._server.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close every connection at once, stalled ones included.

        Idempotent; the provider can be started again afterwards (on a new port if the
        port was ephemeral).

        Example:
            >>> fp = FakeProvider().start()
            >>> fp.stop(); fp.stop()
            >>> fp.running
            False
        """
        self._server.stop(timeout)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> FakeProvider:
        """``async with FakeProvider() as fp``: start without blocking the caller's loop.

        Example:
            >>> import asyncio, httpx
            >>> async def main() -> int:
            ...     async with FakeProvider() as fp, httpx.AsyncClient() as client:
            ...         r = await client.post(fp.openai_base + "/chat/completions",
            ...                               json={"model": "m"})
            ...         return r.status_code
            >>> asyncio.run(main())
            200
        """
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def running(self) -> bool:
        """Whether the server is started.

        Example:
            >>> FakeProvider().running
            False
        """
        return self._server.running

    @property
    def open_connections(self) -> int:
        """How many client connections are open now; shows whether a client closes its
        connections, and that the server let go of those whose client went away.

        Example:
            >>> import httpx
            >>> with FakeProvider() as fp:
            ...     with httpx.Client() as client:
            ...         _ = client.post(fp.openai_base + "/chat/completions", json={"model": "m"})
            ...         during = fp.open_connections
            ...     fp.wait_for_connections(0)
            ...     during, fp.open_connections
            (1, 0)
        """
        return self._server.open_connections

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> None:
        """Block until at most ``count`` client connections are open; raise
        ``TimeoutError`` after ``timeout`` seconds (see :attr:`open_connections`).

        Example:
            >>> with FakeProvider() as fp:
            ...     fp.wait_for_connections(0, timeout=1)
        """
        self._server.wait_for_connections(count, timeout)

    @property
    def port(self) -> int:
        """The bound TCP port (only while running).

        Example:
            >>> with FakeProvider() as fp:
            ...     fp.port > 0
            True
        """
        if self._server.port is None:
            raise RuntimeError("FakeProvider is not running; call start() first")
        return self._server.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, or ``https://...`` when served over TLS.

        Example:
            >>> with FakeProvider() as fp:
            ...     fp.base_url == f"http://127.0.0.1:{fp.port}"
            True
        """
        return f"{self._scheme}://{self._host}:{self.port}"

    @property
    def tls(self) -> LocalTLS | None:
        """The certificate authority whose certificate the provider serves HTTPS with
        (``tls=True`` or a :class:`~policyroute.testing.LocalTLS`); ``None`` over plain HTTP
        and with a server ``ssl.SSLContext`` of the caller's.

        A client trusts it with ``fp.tls.client_context()`` (httpx's ``verify=``), or
        ``fp.tls.ca_file``: ``litellm.ssl_verify`` for the clients litellm builds after it is
        set (see :class:`~policyroute.testing.LocalTLS` for the clients litellm keeps).

        Example:
            >>> import httpx
            >>> with FakeProvider(tls=True) as fp:
            ...     r = httpx.post(fp.openai_base + "/chat/completions",
            ...                    json={"model": "m"}, verify=fp.tls.client_context())
            ...     fp.base_url.startswith("https://"), r.status_code
            (True, 200)
        """
        return self._tls

    @property
    def openai_base(self) -> str:
        """``base_url + "/v1"``: the ``api_base`` for litellm ``openai/...`` models.

        Example:
            >>> with FakeProvider() as fp:
            ...     fp.openai_base.endswith("/v1")
            True
        """
        return self.base_url + "/v1"

    @property
    def anthropic_base(self) -> str:
        """``base_url``: the ``api_base`` for litellm ``anthropic/...`` models.

        litellm appends ``/v1/messages`` to it (as does the Anthropic SDK's ``base_url``).

        Example:
            >>> with FakeProvider() as fp:
            ...     fp.anthropic_base == fp.base_url
            True
        """
        return self.base_url

    # ------------------------------------------------------------------ scripting

    def script(self, model: str, *steps: Step) -> None:
        """Queue ``steps`` for ``model`` (``"*"``: any model); one is consumed per request.

        Example:
            >>> fp = FakeProvider()
            >>> fp.script("gpt-x", Reply(text="hi"), Fault.status(503))
            >>> fp.pending("gpt-x")
            2
        """
        for step in steps:
            _check_step(step)
        with self._lock:
            self._queues.setdefault(model, deque()).extend(steps)

    def set_default(self, model: str, step: Step | None) -> None:
        """Answer ``model``'s requests with ``step`` once its queue is empty (``None``: unset).

        Example:
            >>> fp = FakeProvider()
            >>> fp.set_default("*", Reply(text="ok"))
        """
        if step is not None:
            _check_step(step)
        with self._lock:
            if step is None:
                self._defaults.pop(model, None)
            else:
                self._defaults[model] = step

    def schedule_outage(
        self,
        model: str,
        *,
        failures: int | None = None,
        down_for: float | None = None,
        fault: Fault | None = None,
    ) -> None:
        """Fail ``model``'s next ``failures`` requests, or all of them for ``down_for`` seconds
        from now, with ``fault`` (default ``Fault.status(503)``), then answer normally.

        Outage failures take precedence over, and do not consume, the scripted queue.

        Example:
            >>> fp = FakeProvider()
            >>> fp.schedule_outage("gpt-x", failures=3, fault=Fault.status(502))
            >>> fp.schedule_outage("claude", down_for=0.5)
        """
        if (failures is None) == (down_for is None):
            raise ValueError("pass exactly one of failures= or down_for=")
        if (failures is not None and failures < 0) or (down_for is not None and down_for < 0):
            raise ValueError("failures and down_for must be >= 0")
        chosen = StatusFault(503) if fault is None else fault
        _check_step(chosen)
        until = None if down_for is None else time.monotonic() + down_for
        with self._lock:
            self._outages[model] = _Outage(chosen, failures, until)

    def pending(self, model: str) -> int:
        """How many scripted steps are still queued for ``model`` (exact key).

        Example:
            >>> fp = FakeProvider()
            >>> fp.script("*", Reply(text="a"))
            >>> fp.pending("*"), fp.pending("gpt-x")
            (1, 0)
        """
        with self._lock:
            return len(self._queues.get(model, ()))

    def reset(self) -> None:
        """Forget scripts, defaults, outages, recorded requests and attempt counts.

        Example:
            >>> fp = FakeProvider()
            >>> fp.script("m", Reply(text="a"))
            >>> fp.reset()
            >>> fp.pending("m")
            0
        """
        with self._lock:
            self._queues.clear()
            self._defaults.clear()
            self._outages.clear()
            self._requests.clear()
            self._recorded_total = 0
            self._attempts.clear()

    # ------------------------------------------------------------------ recording

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every recorded request, oldest first.

        Example:
            >>> import httpx
            >>> with FakeProvider() as fp:
            ...     _ = httpx.post(fp.openai_base + "/chat/completions", json={"model": "m"})
            ...     [(r.path, r.source) for r in fp.requests]
            [('/v1/chat/completions', 'auto')]
        """
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """The recorded requests whose ``model`` is ``model``.

        Example:
            >>> import httpx
            >>> with FakeProvider() as fp:
            ...     for model in ("a", "b", "a"):
            ...         _ = httpx.post(fp.openai_base + "/chat/completions", json={"model": model})
            ...     len(fp.requests_for("a"))
            2
        """
        with self._lock:
            return [r for r in self._requests if r.model == model]

    def attempts(self, model: str) -> int:
        """How many chat requests arrived for ``model`` since the last :meth:`clear`.

        Example:
            >>> import httpx
            >>> with FakeProvider() as fp:
            ...     fp.schedule_outage("m", failures=1)
            ...     codes = [httpx.post(fp.openai_base + "/chat/completions",
            ...                         json={"model": "m"}).status_code for _ in range(2)]
            ...     codes, fp.attempts("m")
            ([503, 200], 2)
        """
        with self._lock:
            return self._attempts.get(model, 0)

    @property
    def attempt_counts(self) -> dict[str, int]:
        """A copy of the per-model attempt counts.

        Example:
            >>> import httpx
            >>> with FakeProvider() as fp:
            ...     _ = httpx.post(fp.anthropic_base + "/v1/messages", json={"model": "c"})
            ...     fp.attempt_counts
            {'c': 1}
        """
        with self._lock:
            return dict(self._attempts)

    def clear(self) -> None:
        """Forget recorded requests and attempt counts (scripts are kept).

        Example:
            >>> fp = FakeProvider()
            >>> fp.script("m", Reply(text="a"))
            >>> fp.clear()
            >>> fp.requests, fp.pending("m")
            ([], 1)
        """
        with self._lock:
            self._requests.clear()
            self._recorded_total = 0
            self._attempts.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until ``count`` requests arrived since the last :meth:`clear`, then return
        :attr:`requests`; raise ``TimeoutError`` after ``timeout`` seconds.

        Handy with faults that never answer, to know that the request has arrived.

        Example:
            >>> import httpx
            >>> with FakeProvider() as fp:
            ...     _ = httpx.post(fp.openai_base + "/chat/completions", json={"model": "m"})
            ...     [r.model for r in fp.wait_for_requests(1, timeout=1)]
            ['m']
        """
        with self._recorded:
            if not self._recorded.wait_for(lambda: self._recorded_total >= count, timeout):
                total = self._recorded_total
                raise TimeoutError(f"{total} request(s) recorded, wanted {count}")
            return list(self._requests)

    # ------------------------------------------------------------------ server internals

    def _record(
        self,
        request: HTTPRequest,
        connection: int,
        body: Any,
        api: Api | None,
        *,
        model: str | None = None,
        step: Step | None = None,
        source: Source = "invalid",
    ) -> None:
        entry = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            body=body,
            model=model,
            timestamp=time.time(),
            step=step,
            source=source,
            api=api,
            raw_body=request.body,
            connection=connection,
        )
        with self._recorded:
            self._requests.append(entry)
            self._recorded_total += 1
            self._recorded.notify_all()

    def _select(self, model: str) -> tuple[Step | None, Source]:
        with self._lock:
            self._attempts[model] = self._attempts.get(model, 0) + 1
            now = time.monotonic()
            for key in (model, ANY_MODEL):
                outage = self._outages.get(key)
                if outage is not None and outage.take(now):
                    return outage.fault, "outage"
            for key in (model, ANY_MODEL):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft(), "script"
            for key in (model, ANY_MODEL):
                step = self._defaults.get(key)
                if step is not None:
                    return step, "default"
            return None, "auto"

    async def _dispatch(
        self,
        request: HTTPRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: int,
    ) -> bool:
        keep = request.keep_alive
        path = request.path.rstrip("/") or "/"
        api = _ROUTES.get(path)
        body = _parse_json(request.body)
        if api is None or request.method != "POST":
            self._record(request, connection, body, api)
            return await self._serve_misc(request, path, api, writer, keep)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            self._record(request, connection, body, api)
            message = "Request body must be a JSON object with a string 'model'."
            return await self._responder.send_error(
                api, writer, keep, 400, message, "invalid_request_error"
            )
        try:
            chat = (openai_wire if api == "openai" else anthropic_wire).parse_request(body)
        except InvalidRequest as exc:
            self._record(request, connection, body, api, model=body["model"])
            return await self._responder.send_error(
                api, writer, keep, 400, exc.message, "invalid_request_error", exc.param
            )
        step, source = self._select(chat.model)
        self._record(request, connection, body, api, model=chat.model, step=step, source=source)
        return await self._responder.execute(api, chat, step, writer, keep, reader)

    async def _serve_misc(
        self,
        request: HTTPRequest,
        path: str,
        api: Api | None,
        writer: asyncio.StreamWriter,
        keep: bool,
    ) -> bool:
        if api is not None:
            message = f"Method {request.method} not allowed on {path}."
            return await self._responder.send_error(
                api, writer, keep, 405, message, "invalid_request_error"
            )
        if request.method == "GET" and path in ("/", "/health"):
            writer.write(full_response(200, b'{"status":"ok"}', keep_alive=keep))
        elif request.method == "GET" and path in ("/v1/models", "/models"):
            with self._lock:
                names = sorted({*self._queues, *self._defaults, *self._attempts} - {ANY_MODEL})
            models = [{"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in names]
            body = json.dumps({"object": "list", "data": models}).encode()
            writer.write(full_response(200, body, keep_alive=keep))
        else:
            message = f"Unknown request URL: {request.method} {path}."
            return await self._responder.send_error(
                "openai", writer, keep, 404, message, "invalid_request_error"
            )
        await writer.drain()
        return keep


def _server_tls(
    tls: bool | LocalTLS | ssl.SSLContext | None,
) -> tuple[LocalTLS | None, ssl.SSLContext | None]:
    """The authority and the server context that ``FakeProvider(tls=...)`` means."""
    if isinstance(tls, ssl.SSLContext):
        return None, tls
    if isinstance(tls, LocalTLS):
        return tls, tls.server_context()
    if tls is True:
        made = LocalTLS()
        return made, made.server_context()
    if tls is False or tls is None:
        return None, None
    raise TypeError(
        "FakeProvider tls must be True, False (or None), a policyroute.testing.LocalTLS or a server"
        f" ssl.SSLContext, got {type(tls).__name__}"
    )


def _check_step(step: object) -> None:
    if not isinstance(step, (Reply, Fault)):
        raise TypeError(f"expected a Reply or a Fault, got {type(step).__name__}")


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
