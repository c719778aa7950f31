"""What policyroute needs from litellm's stream objects: their read timeout, whether the
provider accepted the request and whether it finished, the usage they received but never
passed on, and closing them (from the reading thread, or from another to end a read that is
past its deadline).

Example:
    >>> sync_read_timeout({"timeout": 600}, first_token=5.0, idle=2.0)["timeout"]
    5.0
    >>> provider_finished(iter([]))  # not litellm's wrapper: trusted
    True
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import Any

from policyroute.execution.hooks import Usage
from policyroute.execution.usage import has_content, has_finish_reason, is_impossible, usage_of

__all__ = [
    "abort",
    "aclose",
    "close",
    "cut",
    "held_usage",
    "is_litellm_stream",
    "provider_accepted",
    "provider_finished",
    "reported_usage",
    "shut_down_stream",
    "sync_read_timeout",
]

_log = logging.getLogger("policyroute.execution")


def sync_read_timeout(
    params: Mapping[str, Any], first_token: float | None, idle: float | None
) -> Mapping[str, Any]:
    """``params`` with litellm's ``timeout`` (httpx's read timeout for a sync stream) set to
    the larger deadline, so a silent connection is noticed without a thread."""
    if first_token is None and idle is None:
        return params
    request_timeout = params.get("timeout")
    read = max(first_token or 0.0, idle) if idle is not None else request_timeout
    if read is None:
        return params
    if isinstance(request_timeout, (int, float)):
        read = min(float(read), float(request_timeout))
    return {**params, "timeout": read}


def is_litellm_stream(stream: Any) -> bool:
    """Whether ``stream`` is litellm's stream wrapper (which keeps what the provider sent),
    not another iterable from an injected completion callable.

    Example:
        >>> is_litellm_stream(iter([]))
        False
    """
    return hasattr(stream, "received_finish_reason")


def provider_accepted(stream: Any) -> bool:
    """Whether the provider accepted the request of litellm's stream wrapper ``stream``: it
    answered with a success status.

    litellm's wrapper holds the provider's response stream (``completion_stream``) only once
    the HTTP answer came back with a 2xx status; an error status raises instead. Some
    providers' wrappers make the request at their first read, and closing the wrapper drops
    its response stream: ask after each read, before closing. An iterable that is not
    litellm's wrapper (from an injected completion callable) tells nothing of the kind:
    ``False``, its chunks are the evidence.

    Example:
        >>> provider_accepted(iter([]))
        False
    """
    if not is_litellm_stream(stream):
        return False
    return getattr(stream, "completion_stream", None) is not None


def provider_finished(stream: Any) -> bool:
    """Whether the provider sent a finish reason. litellm's stream wrapper makes one up
    ("stop") when the body ends without it, so what it received is read from the wrapper;
    another iterable (an injected completion callable) is trusted."""
    if not is_litellm_stream(stream):
        return True
    return (
        getattr(stream, "received_finish_reason", None) is not None
        or getattr(stream, "intermittent_finish_reason", None) is not None
    )


def held_usage(stream: Any) -> Usage | None:
    """The input side of the last usage litellm's stream wrapper received without passing
    it on, for a stream that ends before the provider's final usage reached the caller.

    Anthropic reports the input tokens (cache reads and writes included) in its first
    event, ``message_start``; litellm turns it into a chunk without content, which its
    wrapper keeps in ``chunks`` but never yields (it yields usage only with the last chunk).
    A stream cut after it was still billed for that input. The output side is left out:
    ``message_start`` carries a placeholder output count, and the output received is
    counted from the text that arrived. ``None`` when nothing usable was received, or for
    an iterable that is not litellm's wrapper.

    Example:
        >>> held_usage(iter([])) is None
        True
    """
    chunks = _received(stream)
    for chunk in reversed(chunks):
        usage = usage_of(chunk)
        if usage is None or usage.input_tokens <= 0 or is_impossible(usage):
            continue
        return Usage(
            input_tokens=usage.input_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
        )
    return None


def reported_usage(stream: Any) -> Usage | None:
    """The provider's own count of a whole answer, as litellm's stream wrapper received it:
    the last usage that came once the answer had begun (OpenAI's usage chunk, Anthropic's
    ``message_delta``), its input side completed from :func:`held_usage` when that usage
    reports the output only.

    The wrapper's last chunk carries usage whether or not the provider sent any: without it,
    litellm counts the tokens itself. What the wrapper kept tells the two apart. ``None``
    when the provider's count never arrived (or was impossible, see
    :func:`~policyroute.execution.usage.is_impossible`), and for an iterable that is not
    litellm's wrapper. Usage that came before any content (Anthropic's ``message_start``,
    whose output count is a placeholder) is not the answer's count.

    Example:
        >>> reported_usage(iter([])) is None
        True
    """
    chunks = _received(stream)
    began = False
    final: Usage | None = None
    for chunk in chunks:
        began = began or has_content(chunk) or has_finish_reason(chunk)
        if began:
            usage = usage_of(chunk)
            if usage is not None:
                final = usage
    if final is None or is_impossible(final):
        return None
    if final.input_tokens > 0:
        return final
    held = held_usage(stream)
    if held is None:
        return final
    return Usage(
        input_tokens=held.input_tokens,
        output_tokens=final.output_tokens,
        cache_read_tokens=held.cache_read_tokens,
        cache_write_tokens=held.cache_write_tokens,
        reasoning_tokens=final.reasoning_tokens,
        cache_write_1h_tokens=held.cache_write_1h_tokens,
    )


def _received(stream: Any) -> list[Any]:
    # litellm's wrapper keeps every chunk it made of the provider's events in ``chunks``,
    # usage-only ones included, but never the usage it makes up for its last chunk.
    if not is_litellm_stream(stream):
        return []
    chunks = getattr(stream, "chunks", None)
    return chunks if isinstance(chunks, list) else []


def abort(stream: Any, *, shut_down: bool = False) -> None:
    """Close the HTTP response under a sync litellm stream from another thread, so that a
    read looping over events litellm swallows ends; the stream itself cannot be closed while
    it is being iterated.

    Closing the response does not wake a read blocked on a silent connection (httpx's read
    timeout ends that one): ``shut_down`` shuts its socket down first, which does, at once
    (the read sees the end of the body)."""
    response = _http_response(getattr(stream, "completion_stream", None))
    if response is None:
        return
    if shut_down:
        _shut_down(response)
    _close_response(response)


def cut(response: Any) -> None:
    """End the read of an httpx response that another thread is reading: shut its socket
    down (which wakes a read blocked on it) and close it. A response already marked closed is
    left alone; that the reader cannot finish and hand the connection back to the pool while
    the cut runs is the caller's to ensure (see :mod:`~policyroute.execution.unary_body`)."""
    _shut_down(response)
    _close_response(response)


def _close_response(response: Any) -> None:
    try:
        response.close()
    except Exception:  # closing a response another thread reads is best effort
        _log.debug("closing the response of a call past its deadline failed", exc_info=True)


def _shut_down(response: Any) -> None:
    """Shut down the socket under an open httpx response (httpcore names it in the
    response's ``network_stream`` extension); nothing for a response without one.

    A response read to its end is closed (``is_closed``) before its connection goes back to
    the pool, and another request may use that connection next: its socket is left alone."""
    if getattr(response, "is_closed", True):
        return
    extensions = getattr(response, "extensions", None)
    network = extensions.get("network_stream") if isinstance(extensions, Mapping) else None
    shut_down_stream(network)


def shut_down_stream(network: Any) -> bool:
    """Shut down the socket under an httpcore network stream (its ``socket`` extra info), which
    wakes a read blocked on it; whether there was an open socket to shut down.

    Example:
        >>> shut_down_stream(None)
        False
    """
    get_extra_info = getattr(network, "get_extra_info", None)
    sock = get_extra_info("socket") if callable(get_extra_info) else None
    if not isinstance(sock, socket.socket) or sock.fileno() == -1:
        return False
    try:
        # ``socket.socket``'s own shutdown: an ``SSLSocket``'s would drop its TLS state,
        # which the reading thread is using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed or never connected: nothing is blocked on it
        return False
    return True


def _http_response(completion_stream: Any) -> Any:
    # openai.Stream keeps its httpx.Response, as litellm 1.108 and later's Anthropic iterator
    # does under ``_response``; litellm's other iterators keep only the generator of
    # response.iter_lines() (or, from 1.108, of litellm's SSE splitter over
    # response.iter_text()), whose frames hold it.
    for name in ("response", "_response"):
        response = getattr(completion_stream, name, None)
        if callable(getattr(response, "close", None)):
            return response
    return _response_under(getattr(completion_stream, "streaming_response", None))


def _response_under(generator: Any, depth: int = 3) -> Any:
    """The httpx response a chain of generators reads from: the ``self`` of the first frame,
    outermost first, that is one (httpx's ``iter_lines``/``iter_text``: a ``close`` and
    ``extensions``), looked for through generators held in the frames' locals, ``depth``
    levels down at most."""
    frame = getattr(generator, "gi_frame", None)
    if frame is None or depth == 0:
        return None
    owner = frame.f_locals.get("self")
    if callable(getattr(owner, "close", None)) and hasattr(owner, "extensions"):
        return owner
    for value in frame.f_locals.values():
        found = _response_under(value, depth - 1)
        if found is not None:
            return found
    return None


def close(stream: Any) -> None:
    """Close a sync litellm stream so its HTTP connection is released.

    litellm's own iterators (Anthropic's and most providers') have no ``close()``: their
    response is closed instead. Left to the garbage collector, it is closed whenever a
    collection happens to run, and a collection inside httpcore's pool lock (another request
    of the same thread, on the same client) deadlocks that thread: closing the response takes
    that lock again."""
    if stream is None:
        return
    completion_stream = getattr(stream, "completion_stream", None)
    for target in (completion_stream, _http_response(completion_stream), stream):
        close = getattr(target, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # the stream is already broken; closing is best effort
                pass
            return


async def aclose(stream: Any) -> None:
    """Close an async litellm stream so its HTTP connection is released."""
    aclose = getattr(stream, "aclose", None)
    if callable(aclose):
        try:
            await aclose()
        except Exception:  # the stream is already broken; closing is best effort
            pass
