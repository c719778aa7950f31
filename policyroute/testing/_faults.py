"""Faults the fake provider can inject instead of (or while) answering a request.

Build them with the :class:`Fault` factory methods, e.g. ``Fault.status(429, retry_after=1)``
or ``Fault.stream_cut(after=3)``; each returns an immutable instance of a concrete subclass
that a test can also construct directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from policyroute.testing._steps import Reply

DEFAULT_HANG_SECONDS = 300.0
"""How long :class:`NoResponse` and :class:`StreamStall` keep a connection open by default."""


class Fault:
    """Base class of every fault, with one factory method per fault kind.

    Example:
        >>> Fault.status(429, retry_after=1.5)
        StatusFault(status_code=429, retry_after=1.5, message=None, headers=())
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
    ) -> StatusFault:
        """An HTTP error status with a JSON error body in the provider's format.

        ``headers`` are sent with the error as given, e.g. a provider's rate-limit headers.

        Example:
            >>> Fault.status(503).status_code
            503
            >>> Fault.status(429, headers={"x-ratelimit-reset-requests": "1s"}).headers
            (('x-ratelimit-reset-requests', '1s'),)
        """
        return StatusFault(status, retry_after, message, tuple((headers or {}).items()))

    @staticmethod
    def context_length(message: str | None = None) -> ContextLengthFault:
        """A 400 saying the prompt exceeds the model's context window.

        Example:
            >>> Fault.context_length()
            ContextLengthFault(message=None)
        """
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
        return ContentFilterFault(code, message)

    @staticmethod
    def bad_request(message: str = "Invalid request.", param: str | None = None) -> BadRequestFault:
        """A generic 400 ``invalid_request_error``.

        Example:
            >>> Fault.bad_request("bad 'top_p'", param="top_p").param
            'top_p'
        """
        return BadRequestFault(message, param)

    @staticmethod
    def connection_reset() -> ConnectionReset:
        """Read the request, then close the socket with a TCP RST and no response.

        Example:
            >>> Fault.connection_reset()
            ConnectionReset()
        """
        return ConnectionReset()

    @staticmethod
    def no_response(timeout: float = DEFAULT_HANG_SECONDS) -> NoResponse:
        """Read the request and never answer (until ``stop()``, ``timeout`` seconds, or the
        client closing its end).

        Example:
            >>> Fault.no_response(timeout=30).timeout
            30
        """
        return NoResponse(timeout)

    @staticmethod
    def slow_first_token(delay: float, reply: Reply | None = None) -> SlowFirstToken:
        """Answer normally, but wait ``delay`` seconds before the first byte.

        Example:
            >>> Fault.slow_first_token(2.5).delay
            2.5
        """
        return SlowFirstToken(delay, reply)

    @staticmethod
    def stream_cut(after: int, reply: Reply | None = None) -> StreamCut:
        """Send ``after`` stream chunks, then close the connection mid-body.

        Example:
            >>> Fault.stream_cut(after=3, reply=Reply(text="a b c d e")).after
            3
        """
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
        return StreamStall(after, reply, timeout)

    @staticmethod
    def malformed_chunk(after: int, reply: Reply | None = None) -> MalformedChunk:
        """Send ``after`` stream chunks, one chunk that is not JSON, then the rest.

        Example:
            >>> Fault.malformed_chunk(after=1).after
            1
        """
        return MalformedChunk(after, reply)

    @staticmethod
    def missing_done(reply: Reply | None = None) -> MissingDone:
        """Stream everything except the terminal ``[DONE]`` / ``message_stop`` event.

        Example:
            >>> Fault.missing_done()
            MissingDone(reply=None)
        """
        return MissingDone(reply)

    @staticmethod
    def malformed_body() -> MalformedBody:
        """Answer ``200`` with a ``application/json`` body that does not parse.

        Example:
            >>> Fault.malformed_body()
            MalformedBody()
        """
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
        return RawStream(tuple(events), done, repeat_every, timeout)


def _check_non_negative(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


# The fake provider writes these itself; a second copy would break the response's framing.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _check_header(name: str, value: str) -> None:
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"StatusFault.headers: {name!r} is not an HTTP header name")
    if name.lower() in _FRAMING_HEADERS:
        raise ValueError(
            f"StatusFault.headers: {name!r} is set by the fake provider itself; leave it out"
        )
    if "\r" in value or "\n" in value or not value.isascii():
        raise ValueError(
            f"StatusFault.headers: the value of {name!r} must be one line of ASCII, got {value!r}"
        )


@dataclass(frozen=True, slots=True)
class StatusFault(Fault):
    """HTTP ``status_code`` with a provider-shaped JSON error and an optional ``Retry-After``.

    ``retry_after`` is in seconds; it is sent as an integer when whole, else as a decimal
    (``"1.5"``), which the OpenAI and Anthropic SDKs accept. ``message`` overrides the
    provider-like default message for the status. 529 is Anthropic's ``overloaded_error``.
    ``headers`` are further ``(name, value)`` response headers, sent in order after the
    provider's own (rate-limit headers such as ``x-ratelimit-reset-requests`` or
    ``anthropic-ratelimit-tokens-reset``); values are sent verbatim, unparsed, so a test can
    send malformed ones too.

    Example:
        >>> StatusFault(503).retry_after is None
        True
        >>> StatusFault(429, headers=(("x-ratelimit-remaining-requests", "0"),)).headers[0][1]
        '0'
    """

    status_code: int
    retry_after: float | None = None
    message: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 400 <= self.status_code <= 599:
            raise ValueError(f"StatusFault.status_code must be 4xx/5xx, got {self.status_code}")
        if self.retry_after is not None:
            _check_non_negative("StatusFault.retry_after", self.retry_after)
        # A tuple keeps the fault hashable and immutable whatever sequence was passed.
        object.__setattr__(self, "headers", tuple((str(n), str(v)) for n, v in self.headers))
        for name, value in self.headers:
            _check_header(name, value)


@dataclass(frozen=True, slots=True)
class ContextLengthFault(Fault):
    """400 ``context_length_exceeded`` (OpenAI) / ``prompt is too long`` (Anthropic).

    litellm recognises this error by its message text, not its code: a custom ``message``
    must keep ``"maximum context length"`` (OpenAI) or ``"prompt is too long"``
    (Anthropic), as the real ones do, to be raised as ``ContextWindowExceededError``
    rather than a plain ``BadRequestError``.

    Example:
        >>> ContextLengthFault().message is None
        True
    """

    message: str | None = None


@dataclass(frozen=True, slots=True)
class ContentFilterFault(Fault):
    """400 content-policy rejection; ``code`` is the OpenAI error code to report.

    Use ``"content_filter"`` for the Azure OpenAI flavour. litellm raises
    ``ContentPolicyViolationError`` for the default code on the OpenAI wire and for any
    code on the Anthropic wire; for ``"content_filter"`` through ``openai/`` models it
    raises ``BadRequestError``, as it does for Azure's real answer. A custom ``message``
    is what litellm reads on the Anthropic wire: keep ``"content filtering policy"`` in it.

    Example:
        >>> ContentFilterFault("content_filter").code
        'content_filter'
    """

    code: str = "content_policy_violation"
    message: str | None = None


@dataclass(frozen=True, slots=True)
class BadRequestFault(Fault):
    """A plain 400 ``invalid_request_error`` with ``message`` (and OpenAI ``param``).

    Example:
        >>> BadRequestFault("bad 'temperature'", param="temperature").param
        'temperature'
    """

    message: str = "Invalid request."
    param: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionReset(Fault):
    """Read the request, then reset the connection (``SO_LINGER`` 0) without answering.

    Example:
        >>> ConnectionReset()
        ConnectionReset()
    """


@dataclass(frozen=True, slots=True)
class NoResponse(Fault):
    """Read the request and send nothing; close after ``timeout`` seconds or on ``stop()``.

    Example:
        >>> NoResponse(timeout=5).timeout
        5
    """

    timeout: float = DEFAULT_HANG_SECONDS

    def __post_init__(self) -> None:
        _check_non_negative("NoResponse.timeout", self.timeout)


@dataclass(frozen=True, slots=True)
class SlowFirstToken(Fault):
    """Answer with ``reply`` (default content if ``None``) after ``delay`` seconds.

    For streams the response headers are also held back, as an API that is slow to start
    generating does.

    Example:
        >>> SlowFirstToken(0.5).delay
        0.5
    """

    delay: float
    reply: Reply | None = None

    def __post_init__(self) -> None:
        _check_non_negative("SlowFirstToken.delay", self.delay)


@dataclass(frozen=True, slots=True)
class StreamCut(Fault):
    """Send the first ``after`` SSE events, then close the connection mid-body.

    When the answer has ``after`` events or fewer, every event but the terminal
    ``[DONE]`` / ``message_stop`` is sent before the cut. On a non-streaming request the
    headers and half of the JSON body are sent instead.

    Example:
        >>> StreamCut(after=3).after
        3
    """

    after: int
    reply: Reply | None = None

    def __post_init__(self) -> None:
        _check_non_negative("StreamCut.after", self.after)


@dataclass(frozen=True, slots=True)
class StreamStall(Fault):
    """Send the first ``after`` SSE events, then go silent with the connection open.

    When the answer has ``after`` events or fewer, the stall comes just before the
    terminal ``[DONE]`` / ``message_stop`` event. The connection is closed after
    ``timeout`` seconds or on ``stop()``. On a non-streaming request the headers and half
    of the JSON body are sent, then nothing.

    Example:
        >>> StreamStall(after=1, timeout=10).timeout
        10
    """

    after: int
    reply: Reply | None = None
    timeout: float = DEFAULT_HANG_SECONDS

    def __post_init__(self) -> None:
        _check_non_negative("StreamStall.after", self.after)
        _check_non_negative("StreamStall.timeout", self.timeout)


@dataclass(frozen=True, slots=True)
class MalformedChunk(Fault):
    """Send ``after`` SSE events, then ``data: {not json``, then the rest of the stream.

    When the answer has ``after`` events or fewer, the malformed chunk comes just before
    the terminal ``[DONE]`` / ``message_stop`` event. Non-streaming requests are answered normally.

    Example:
        >>> MalformedChunk(after=2).after
        2
    """

    after: int
    reply: Reply | None = None

    def __post_init__(self) -> None:
        _check_non_negative("MalformedChunk.after", self.after)


@dataclass(frozen=True, slots=True)
class MissingDone(Fault):
    """Stream every event (usage included) but not ``data: [DONE]`` / ``message_stop``.

    The HTTP body is terminated cleanly and the connection closed. Non-streaming requests
    are answered normally.

    Example:
        >>> MissingDone().reply is None
        True
    """

    reply: Reply | None = None


@dataclass(frozen=True, slots=True)
class MalformedBody(Fault):
    """Answer ``200 application/json`` with a truncated, unparsable body (stream or not).

    Example:
        >>> MalformedBody()
        MalformedBody()
    """


@dataclass(frozen=True, slots=True)
class RawResponse(Fault):
    """Answer ``status`` with exactly ``body`` and ``content_type``, whatever was asked.

    Streamed requests get the same plain body (with ``Content-Length``), as a proxy's error
    page does; ``str`` bodies are sent as UTF-8.

    Example:
        >>> RawResponse(b"<html>Bad gateway</html>", 502, "text/html").status_code
        502
    """

    body: bytes | str = b""
    status_code: int = 200
    content_type: str = "application/json"

    def __post_init__(self) -> None:
        if not 200 <= self.status_code <= 599:
            raise ValueError(f"RawResponse.status_code must be 2xx-5xx, got {self.status_code}")

    @property
    def payload(self) -> bytes:
        """The body as bytes.

        Example:
            >>> RawResponse("{}").payload
            b'{}'
        """
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass(frozen=True, slots=True)
class RawStream(Fault):
    """A ``200 text/event-stream`` whose events are exactly ``events``, on either wire.

    An event starting with ``event:`` is sent as is (Anthropic style), any other as
    ``data: <event>``. ``done`` appends ``data: [DONE]``. With ``repeat_every`` seconds the
    last event is repeated until ``timeout`` (or ``stop()``), then the connection is closed;
    without it the body ends cleanly after the events. Non-streamed requests get the same
    stream: a provider that ignores ``stream: false``.

    Example:
        >>> RawStream(('{"choices": []}',), repeat_every=0.05).repeat_every
        0.05
    """

    events: Sequence[str] = field(default_factory=tuple)
    done: bool = False
    repeat_every: float | None = None
    timeout: float = DEFAULT_HANG_SECONDS

    def __post_init__(self) -> None:
        object.__setattr__(self, "events", tuple(self.events))
        if self.repeat_every is not None:
            if self.repeat_every <= 0:
                raise ValueError("RawStream.repeat_every must be > 0")
            if not self.events:
                raise ValueError("RawStream.repeat_every needs at least one event to repeat")
        _check_non_negative("RawStream.timeout", self.timeout)

    def encoded(self, event: str) -> bytes:
        """One event as SSE bytes.

        Example:
            >>> RawStream().encoded("{}")
            b'data: {}\\n\\n'
        """
        text = event if event.startswith("event:") else f"data: {event}"
        return text.encode() + b"\n\n"


Step: TypeAlias = Reply | Fault
"""One scripted answer: a :class:`~policyroute.testing.Reply` or a :class:`Fault`."""
