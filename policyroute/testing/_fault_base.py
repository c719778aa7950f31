"""The :class:`Fault` base class: one factory method per fault kind.

``Fault.status(429, retry_after=1)`` or ``Fault.stream_cut(after=3)`` returns an immutable
instance of a concrete subclass: the HTTP error answers live in
:mod:`policyroute.testing._status_faults`, the broken deliveries (connection, timing, stream
and body) in :mod:`policyroute.testing._stream_faults`. Those modules subclass :class:`Fault`,
so each factory imports its class when called rather than this module importing them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from policyroute.testing._steps import Reply

if TYPE_CHECKING:
    from policyroute.testing._status_faults import (
        BadRequestFault,
        ContentFilterFault,
        ContextLengthFault,
        StatusFault,
    )
    from policyroute.testing._stream_faults import (
        ConnectionReset,
        MalformedBody,
        MalformedChunk,
        MissingDone,
        NoResponse,
        RawResponse,
        RawStream,
        SlowFirstToken,
        StreamCut,
        StreamStall,
    )

__all__ = ["DEFAULT_HANG_SECONDS", "Fault", "check_non_negative"]

DEFAULT_HANG_SECONDS = 300.0
"""How long :class:`NoResponse` and :class:`StreamStall` keep a connection open by default."""


class Fault:
    """Base class of every fault, with one factory method per fault kind.

    Example:
        >>> Fault.status(429, retry_after=1.5)
        StatusFault(status_code=429, retry_after=1.5, message=None, headers=(), body=None)
        >>> Fault.stream_cut(after=2).after
        2
    """

    __slots__ = ()

    @staticmethod
    def status(
        status: int,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> StatusFault:
        """An HTTP error status with a JSON error body in the provider's format.

        ``headers`` are sent with the error as given, e.g. a provider's rate-limit headers.
        ``body``, any JSON value, is sent instead of the provider-shaped error body.

        Example:
            >>> Fault.status(503).status_code
            503
            >>> Fault.status(429, headers={"x-ratelimit-reset-requests": "1s"}).headers
            (('x-ratelimit-reset-requests', '1s'),)
        """
        from policyroute.testing._status_faults import StatusFault

        text = None if body is None else json.dumps(body)
        return StatusFault(status, retry_after, message, tuple((headers or {}).items()), text)

    @staticmethod
    def context_length(message: str | None = None) -> ContextLengthFault:
        """A 400 saying the prompt exceeds the model's context window.

        Example:
            >>> Fault.context_length()
            ContextLengthFault(message=None)
        """
        from policyroute.testing._status_faults import ContextLengthFault

        return ContextLengthFault(message)

    @staticmethod
    def content_filter(
        code: str = "content_policy_violation", message: str | None = None
    ) -> ContentFilterFault:
        """A 400 saying the request was blocked by a content filter.

        Example:
            >>> Fault.content_filter().code
            'content_policy_violation'
        """
        from policyroute.testing._status_faults import ContentFilterFault

        return ContentFilterFault(code, message)

    @staticmethod
    def bad_request(message: str = "Invalid request.", param: str | None = None) -> BadRequestFault:
        """A generic 400 ``invalid_request_error``.

        Example:
            >>> Fault.bad_request("bad 'top_p'", param="top_p").param
            'top_p'
        """
        from policyroute.testing._status_faults import BadRequestFault

        return BadRequestFault(message, param)

    @staticmethod
    def connection_reset() -> ConnectionReset:
        """Read the request, then close the socket with a TCP RST and no response.

        Example:
            >>> Fault.connection_reset()
            ConnectionReset()
        """
        from policyroute.testing._stream_faults import ConnectionReset

        return ConnectionReset()

    @staticmethod
    def no_response(timeout: float = DEFAULT_HANG_SECONDS) -> NoResponse:
        """Read the request and never answer (until ``stop()``, ``timeout`` seconds, or the
        client closing its end).

        Example:
            >>> Fault.no_response(timeout=30).timeout
            30
        """
        from policyroute.testing._stream_faults import NoResponse

        return NoResponse(timeout)

    @staticmethod
    def slow_first_token(delay: float, reply: Reply | None = None) -> SlowFirstToken:
        """Answer normally, but wait ``delay`` seconds before the first byte.

        Example:
            >>> Fault.slow_first_token(2.5).delay
            2.5
        """
        from policyroute.testing._stream_faults import SlowFirstToken

        return SlowFirstToken(delay, reply)

    @staticmethod
    def stream_cut(after: int, reply: Reply | None = None) -> StreamCut:
        """Send ``after`` stream chunks, then close the connection mid-body.

        Example:
            >>> Fault.stream_cut(after=3, reply=Reply(text="a b c d e")).after
            3
        """
        from policyroute.testing._stream_faults import StreamCut

        return StreamCut(after, reply)

    @staticmethod
    def stall(
        after: int, reply: Reply | None = None, timeout: float = DEFAULT_HANG_SECONDS
    ) -> StreamStall:
        """Send ``after`` stream chunks, then keep the connection open without sending.

        Example:
            >>> Fault.stall(after=2, timeout=10).timeout
            10
        """
        from policyroute.testing._stream_faults import StreamStall

        return StreamStall(after, reply, timeout)

    @staticmethod
    def malformed_chunk(after: int, reply: Reply | None = None) -> MalformedChunk:
        """Send ``after`` stream chunks, one chunk that is not JSON, then the rest.

        Example:
            >>> Fault.malformed_chunk(after=1).after
            1
        """
        from policyroute.testing._stream_faults import MalformedChunk

        return MalformedChunk(after, reply)

    @staticmethod
    def missing_done(reply: Reply | None = None) -> MissingDone:
        """Stream everything except the terminal ``[DONE]`` / ``message_stop`` event.

        Example:
            >>> Fault.missing_done()
            MissingDone(reply=None)
        """
        from policyroute.testing._stream_faults import MissingDone

        return MissingDone(reply)

    @staticmethod
    def malformed_body() -> MalformedBody:
        """Answer ``200`` with a ``application/json`` body that does not parse.

        Example:
            >>> Fault.malformed_body()
            MalformedBody()
        """
        from policyroute.testing._stream_faults import MalformedBody

        return MalformedBody()

    @staticmethod
    def raw(
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str = "application/json",
    ) -> RawResponse:
        """Answer with exactly ``body`` (stream or not): an HTML error page, ``{}``, nothing.

        Example:
            >>> Fault.raw("<html>502</html>", status=502, content_type="text/html").payload
            b'<html>502</html>'
        """
        from policyroute.testing._stream_faults import RawResponse

        return RawResponse(body, status, content_type)

    @staticmethod
    def raw_stream(
        *events: str,
        done: bool = False,
        repeat_every: float | None = None,
        timeout: float = DEFAULT_HANG_SECONDS,
    ) -> RawStream:
        """Answer ``200 text/event-stream`` with exactly ``events`` (each a ``data:`` payload,
        or a whole event when it starts with ``event:``), then ``data: [DONE]`` if ``done``.

        With ``repeat_every``, the last event is sent again every that many seconds until
        ``timeout``: a stall that still sends bytes.

        Example:
            >>> Fault.raw_stream('{"choices": []}', done=True).events
            ('{"choices": []}',)
        """
        from policyroute.testing._stream_faults import RawStream

        return RawStream(tuple(events), done, repeat_every, timeout)


def check_non_negative(name: str, value: float) -> None:
    """Raise :class:`ValueError` naming ``name`` when ``value`` is negative.

    Example:
        >>> check_non_negative("StreamCut.after", 0)
    """
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
