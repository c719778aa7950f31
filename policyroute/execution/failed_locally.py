"""Whether a failed attempt failed in this process, before anything reached the provider.

litellm reports failures of its own code as provider failures: a call parameter of the wrong
type (``anthropic_beta=5``, which it iterates building Anthropic's headers; a header value that
is no text; a ``timeout`` it cannot read as a number) arrives as an ``APIConnectionError``, or
as an ``InternalServerError`` around a ``TypeError`` that reads like an unreadable answer, and a
provider SDK it cannot import as a connection error around the ``ImportError``. policyroute's
own adapting of the messages for a deployment can raise too. Classified by litellm's type,
each was retried on the same deployment and counted by its circuit breaker: one caller's bad
input opened the breaker for every caller of the process.

:func:`failed_locally` tells them apart by where the innermost exception was raised, from the
frames its traceback (and the tracebacks of the exceptions around it) went through:

1. An ``ImportError`` at the root: the environment lacks a module; nothing was sent.
2. No evidence without a traceback: an exception made but never raised says nothing of where.
3. The network's or an answer's by type: an ``OSError`` (connection refused or reset, a socket
   or TLS error), a timeout of any kind, a ``JSONDecodeError``, an exception of an HTTP client
   package (httpx, httpcore, h11, h2, aiohttp, anyio...) anywhere in the chain, or an error of
   litellm's or a provider SDK's own at the root (they say what they met, answers included).
4. The network's or an answer's by place: a frame of an HTTP client sending the request or
   reading the answer (httpx's transports and ``send``, httpcore, aiohttp...), of a provider
   SDK or litellm reading an answer (``transform_response``, ``convert_to_model_response_object``,
   litellm's stream wrapper, the SDKs' stream and response parsing). httpx building the request
   and its headers is not sending it.
5. Anything else was raised by code in this process before a request went out.

Checked against litellm 1.106 for OpenAI and Anthropic deployments, sync and async, streamed
or not: the failures above are local; a refused or reset connection, a cut stream, an error
status and an unreadable answer are not.

Example:
    >>> failed_locally(ModuleNotFoundError("No module named 'google'", name="google"), [])
    True
    >>> failed_locally(ValueError("made, not raised"), [])
    False
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Iterable
from typing import Any, Final

__all__ = ["failed_locally", "raised_where"]

# Packages whose exceptions say a request was on the wire or an answer was read.
_WIRE_PACKAGES: Final = frozenset(
    {
        "httpx",
        "httpcore",
        "h11",
        "h2",
        "aiohttp",
        "aiohappyeyeballs",
        "anyio",
        "ssl",
        "socket",
        "requests",
        "urllib3",
    }
)
# Packages whose own errors at the root report what they met, answers included.
_REPORTERS: Final = frozenset({"litellm", "openai", "anthropic"})

_ANY: Final[frozenset[str]] = frozenset()  # every function of the file
# httpx's client sending a request (it also builds the request, which is not sending it).
_SENDS: Final = frozenset(
    {"send", "_send_handling_auth", "_send_handling_redirects", "_send_single_request"}
)
# httpx reading an answer's body (its models module also builds the request's headers).
_READS_BODY: Final = frozenset(
    {
        "__iter__",
        "__aiter__",
        "json",
        "read",
        "aread",
        "text",
        "content",
        "iter_bytes",
        "aiter_bytes",
        "iter_text",
        "aiter_text",
        "iter_lines",
        "aiter_lines",
        "iter_raw",
        "aiter_raw",
        "raise_for_status",
    }
)
# The provider SDKs parsing an answer (their response modules also wrap the request's call).
_SDK_READS: Final = frozenset(
    {"parse", "_parse", "read", "text", "json", "iter_bytes", "iter_lines"}
)
# (path tail, functions): frames where a request is on the wire or an answer is read. A tail
# ending in "/" takes any file below it.
_WIRE_STEPS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("httpx/_transports/", _ANY),
    ("httpx/_client.py", _SENDS | _READS_BODY),
    ("httpx/_models.py", _READS_BODY),
    ("httpcore/", _ANY),
    ("h11/", _ANY),
    ("h2/", _ANY),
    ("aiohttp/", _ANY),
    ("aiohappyeyeballs/", _ANY),
    ("anyio/", _ANY),
    ("requests/", _ANY),
    ("urllib3/", _ANY),
    ("openai/_streaming.py", _ANY),
    ("openai/_response.py", _SDK_READS),
    ("openai/_legacy_response.py", _SDK_READS),
    ("anthropic/_streaming.py", _ANY),
    ("anthropic/_response.py", _SDK_READS),
    ("anthropic/_legacy_response.py", _SDK_READS),
    ("litellm/llms/custom_httpx/aiohttp_transport.py", _ANY),
    ("litellm/litellm_core_utils/streaming_handler.py", _ANY),
)
# Where litellm reads an answer into its response, whatever the provider's module.
_READS_RESPONSE: Final = frozenset(
    {
        "convert_to_model_response_object",
        "transform_response",
        "transform_parsed_response",
        "chunk_parser",
        "_process_response",
        "process_response",
    }
)


def failed_locally(exc: BaseException, chain: list[BaseException]) -> bool:
    """Whether the attempt that raised ``exc`` (with ``chain``, the exceptions behind it,
    nearest first) failed in this process before anything was sent (see the module doc): the
    caller's input or local code, which every retry meets again and which says nothing about
    the deployment's health.

    Example:
        >>> def build():
        ...     raise TypeError("'int' object is not iterable")
        >>> try:
        ...     build()
        ... except TypeError as exc:
        ...     failed_locally(exc, [])
        True
    """
    root = chain[-1] if chain else exc
    if isinstance(root, ImportError):
        return True
    if root.__traceback__ is None:
        return False
    if isinstance(root, (OSError, TimeoutError, asyncio.TimeoutError, json.JSONDecodeError)):
        return False
    if _package(type(root)) in _REPORTERS:
        return False
    for cause in (exc, *chain):
        kinds = type(cause).__mro__
        if any(_package(cls) in _WIRE_PACKAGES or "Timeout" in cls.__name__ for cls in kinds):
            return False  # a timeout, whoever reports it, is time spent on the wire
        if _on_the_wire(cause):
            return False
    return True


def raised_where(exc: BaseException) -> str:
    """``module.function`` of the innermost frame ``exc`` was raised in; ``""`` if unraised.

    Example:
        >>> raised_where(ValueError("made, not raised"))
        ''
    """
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    if not frames:
        return ""
    module = frames[-1].f_globals.get("__name__")
    name = frames[-1].f_code.co_name
    return f"{module}.{name}" if isinstance(module, str) else name


def _on_the_wire(exc: BaseException) -> bool:
    frames: Iterable[tuple[Any, int]] = traceback.walk_tb(exc.__traceback__)
    for frame, _ in frames:
        code = frame.f_code
        if code.co_name in _READS_RESPONSE:
            return True
        path = code.co_filename.replace("\\", "/")
        for tail, functions in _WIRE_STEPS:
            if tail.endswith("/"):
                if f"/{tail}" not in path:
                    continue
            elif not path.endswith(f"/{tail}"):
                continue
            if not functions or code.co_name in functions:
                return True
    return False


def _package(cls: type) -> str:
    return cls.__module__.partition(".")[0]
