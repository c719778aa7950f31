"""Faults in how an answer is delivered: the connection, its timing, the stream and the body.

Built by the :class:`Fault` factory methods (``Fault.stream_cut(after=3)``,
``Fault.no_response()``, ``Fault.raw_stream(...)``, ...), or constructed directly.

Example:
    >>> StreamCut(after=2).after
    2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from policyroute.testing._fault_base import DEFAULT_HANG_SECONDS, Fault, check_non_negative
from policyroute.testing._steps import Reply

__all__ = [
    "ConnectionReset",
    "MalformedBody",
    "MalformedChunk",
    "MissingDone",
    "NoResponse",
    "RawResponse",
    "RawStream",
    "SlowFirstToken",
    "StreamCut",
    "StreamStall",
]


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
        check_non_negative("NoResponse.timeout", self.timeout)


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
        check_non_negative("SlowFirstToken.delay", self.delay)


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
        check_non_negative("StreamCut.after", self.after)


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
        check_non_negative("StreamStall.after", self.after)
        check_non_negative("StreamStall.timeout", self.timeout)


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
        check_non_negative("MalformedChunk.after", self.after)


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
        if isinstance(self.events, (str, bytes)):
            raise TypeError("RawStream.events must be a sequence of event texts, not one text")
        events = tuple(self.events)
        for i, event in enumerate(events):
            if not isinstance(event, str):
                raise TypeError(
                    f"RawStream event {i} must be a str (a data payload or a whole 'event:'"
                    f" event), not {type(event).__name__}; Fault.raw_stream takes the events"
                    " as separate arguments: Fault.raw_stream(*events)"
                )
        object.__setattr__(self, "events", events)
        if self.repeat_every is not None:
            if self.repeat_every <= 0:
                raise ValueError("RawStream.repeat_every must be > 0")
            if not self.events:
                raise ValueError("RawStream.repeat_every needs at least one event to repeat")
        check_non_negative("RawStream.timeout", self.timeout)

    def encoded(self, event: str) -> bytes:
        """One event as SSE bytes.

        Example:
            >>> RawStream().encoded("{}")
            b'data: {}\\n\\n'
        """
        text = event if event.startswith("event:") else f"data: {event}"
        return text.encode() + b"\n\n"
