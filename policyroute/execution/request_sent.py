"""Whether the request of an attempt that ended without an answer had reached the provider.

A provider bills the input of a request it received and began processing, answered or not:
an attempt past its deadline while the provider works on it, or cancelled while it waits for
the answer, is charged its prompt (counted locally, marked estimated), as a stream cut after
the provider accepted it is. One that never got its request out is free. :func:`request_sent`
tells them apart from the exception that ended the attempt, and only calls a request sent on
positive evidence that the client was reading the answer, so that a connect failure is never
charged:

1. **The exception chain** (``__cause__``, ``__context__``, litellm's
   ``original_exception``). litellm keeps the HTTP client's exception under its own, and both
   transports say in which phase a timeout happened: httpx's ``ReadTimeout`` (sync calls,
   httpcore) and aiohttp's ``SocketTimeoutError`` (async calls: litellm's aiohttp transport,
   which turns it into httpx's ``ReadTimeout``) fire only while reading the answer, which
   starts once the request was written. Any connect-side exception in the chain (httpx's
   ``ConnectTimeout``, ``ConnectError``, ``PoolTimeout``, ``WriteTimeout``, ``WriteError``,
   ``ProxyError``; aiohttp's ``ClientConnectorError``, ``ConnectionTimeoutError``) means not
   sent, and wins over a read-side one.
2. **Where the exception was raised** when its type does not say: a cancellation (asyncio's
   ``CancelledError``, a ``KeyboardInterrupt`` in a sync call), policyroute's own request
   deadline (``TimeoutError`` from a cancellation, :mod:`~policyroute.execution.timeouts`)
   and a timeout of no phase (aiohttp's ``ServerTimeoutError``). A cancellation is raised
   where the call was suspended and carries those frames up with it. The innermost frame of
   a known transport step decides: httpcore's ``_receive_response_headers`` /
   ``_receive_event`` / ``_receive_response_body`` (HTTP/1.1 and 2, sync and async), aiohttp's
   ``ClientResponse.start`` and its ``streams`` mean the client was reading the answer: sent.
   httpcore's connection setup and request writing (``_connect``, ``connect_tcp``,
   ``start_tls``, ``wait_for_connection``, ``_send_request_headers``, ``_send_request_body``),
   aiohttp's connector, resolver and ``ClientRequest.send``, and ``aiohappyeyeballs`` mean it
   was not.
3. Anything else is **not sent**: a cancellation in litellm's preparation (its worker thread,
   the OpenAI SDK's platform lookup), during a retry's backoff (no attempt is running then),
   or in an unknown transport; a timeout that litellm reports without its cause.

Limits, chosen for budgets: aiohttp (on Python < 3.12) writes a request's body in a task of
its own and starts reading the answer in the same loop turn, so a cancellation landing in
that one turn counts the request as sent though its body may still be in the socket's
buffer. A ``KeyboardInterrupt`` landing in httpcore's ``handle_request`` between writing
the request and starting to read the answer (a few bytecodes) is not charged, and neither is
a cancellation after the whole answer was read, while litellm builds its response (no
transport frame is left on the stack either time).

Example:
    >>> import httpx
    >>> request_sent(httpx.ReadTimeout("timed out"))
    True
    >>> request_sent(httpx.ConnectTimeout("timed out"))
    False
    >>> request_sent(KeyboardInterrupt())  # raised outside any transport
    False
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import TracebackType
from typing import Final

__all__ = ["request_sent"]

# Exception types (by module root and name, anywhere in the MRO) that say the phase.
_TRANSPORTS: Final = frozenset({"httpx", "httpcore", "aiohttp"})
_NOT_SENT_TYPES: Final = frozenset(
    {
        "ConnectTimeout",
        "ConnectError",
        "PoolTimeout",
        "WriteTimeout",
        "WriteError",
        "ProxyError",
        "UnsupportedProtocol",
        "ClientConnectorError",
        "ConnectionTimeoutError",
    }
)
_SENT_TYPES: Final = frozenset({"ReadTimeout", "SocketTimeoutError"})

_ANY: Final[frozenset[str]] = frozenset()  # every function of the file

_HTTPCORE_RECEIVE: Final = frozenset(
    {
        "_receive_response_headers",
        "_receive_response_body",
        "_receive_event",
        "_receive_response",
        "_receive_stream_event",
    }
)
_HTTPCORE_SEND: Final = frozenset(
    {"_send_request_headers", "_send_request_body", "_send_event", "_send_request_start"}
)
_HTTPCORE_CONNECT: Final = frozenset(
    {"_connect", "wait_for_connection", "connect_tcp", "connect_unix_socket", "start_tls"}
)

# (path tail, functions, sent): the innermost frame matching one decides.
_STEPS: Final[tuple[tuple[str, frozenset[str], bool], ...]] = (
    ("httpcore/_sync/http11.py", _HTTPCORE_RECEIVE, True),
    ("httpcore/_async/http11.py", _HTTPCORE_RECEIVE, True),
    ("httpcore/_sync/http2.py", _HTTPCORE_RECEIVE, True),
    ("httpcore/_async/http2.py", _HTTPCORE_RECEIVE, True),
    ("httpcore/_sync/http11.py", _HTTPCORE_SEND, False),
    ("httpcore/_async/http11.py", _HTTPCORE_SEND, False),
    ("httpcore/_sync/http2.py", _HTTPCORE_SEND, False),
    ("httpcore/_async/http2.py", _HTTPCORE_SEND, False),
    ("httpcore/_sync/connection.py", _HTTPCORE_CONNECT, False),
    ("httpcore/_async/connection.py", _HTTPCORE_CONNECT, False),
    ("httpcore/_sync/connection_pool.py", _HTTPCORE_CONNECT, False),
    ("httpcore/_async/connection_pool.py", _HTTPCORE_CONNECT, False),
    ("httpcore/_backends/sync.py", _HTTPCORE_CONNECT, False),
    ("httpcore/_backends/anyio.py", _HTTPCORE_CONNECT, False),
    ("httpcore/_backends/trio.py", _HTTPCORE_CONNECT, False),
    ("aiohttp/client_reqrep.py", frozenset({"start", "read", "text", "json"}), True),
    ("aiohttp/streams.py", _ANY, True),
    ("aiohttp/client_reqrep.py", frozenset({"send", "write_bytes"}), False),
    ("aiohttp/connector.py", _ANY, False),
    ("aiohttp/resolver.py", _ANY, False),
    ("aiohappyeyeballs/impl.py", _ANY, False),
)

_MAX_CHAIN: Final = 16


def request_sent(exc: BaseException) -> bool:
    """Whether the attempt ended by ``exc`` had sent its request and was waiting for (or
    reading) the provider's answer; ``False`` unless there is evidence (see the module doc).

    Example:
        >>> request_sent(TimeoutError())
        False
    """
    chain = list(_chain(exc))
    found: set[bool] = set()
    for error in chain:
        phase = _phase_of_type(error)
        if phase is not None:
            found.add(phase)
    if found:
        return found == {True}  # a connect-side error anywhere wins
    for error in reversed(chain):  # the root cause was raised innermost
        phase = _phase_of_frames(error.__traceback__)
        if phase is not None:
            return phase
    return False


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions behind it (litellm's ``original_exception`` too), outermost
    first."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < _MAX_CHAIN:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        original = getattr(current, "original_exception", None)
        for behind in (original, current.__cause__ or current.__context__):
            if isinstance(behind, BaseException):
                pending.append(behind)


def _phase_of_type(exc: BaseException) -> bool | None:
    for cls in type(exc).__mro__:
        if cls.__module__.partition(".")[0] not in _TRANSPORTS:
            continue
        if cls.__name__ in _NOT_SENT_TYPES:
            return False
        if cls.__name__ in _SENT_TYPES:
            return True
    return None


def _phase_of_frames(tb: TracebackType | None) -> bool | None:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    for code in reversed(frames):  # innermost first
        path = code.co_filename.replace(os.sep, "/")
        for tail, functions, sent in _STEPS:
            if path.endswith("/" + tail) and (not functions or code.co_name in functions):
                return sent
    return None
