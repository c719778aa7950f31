"""Faults answered as HTTP errors: a status code with a provider-shaped JSON error body.

Built by :meth:`Fault.status`, :meth:`Fault.context_length`, :meth:`Fault.content_filter` and
:meth:`Fault.bad_request`, or constructed directly.

Example:
    >>> StatusFault(429, retry_after=1).retry_after
    1
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from policyroute.testing._fault_base import Fault, check_non_negative

__all__ = ["BadRequestFault", "ContentFilterFault", "ContextLengthFault", "StatusFault"]


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
    send malformed ones too. ``body``, when set, is the JSON text sent instead of the
    provider-shaped error (another provider's error format, such as Google's list with a
    ``RetryInfo``); :meth:`Fault.status` takes it as any JSON value.

    Example:
        >>> StatusFault(503).retry_after is None
        True
        >>> StatusFault(429, headers=(("x-ratelimit-remaining-requests", "0"),)).headers[0][1]
        '0'
        >>> StatusFault(429, body='{"error": "slow down"}').body
        '{"error": "slow down"}'
    """

    status_code: int
    retry_after: float | None = None
    message: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status_code <= 599:
            raise ValueError(f"StatusFault.status_code must be 4xx/5xx, got {self.status_code}")
        if self.retry_after is not None:
            check_non_negative("StatusFault.retry_after", self.retry_after)
        # A tuple keeps the fault hashable and immutable whatever sequence was passed.
        object.__setattr__(self, "headers", tuple((str(n), str(v)) for n, v in self.headers))
        for name, value in self.headers:
            _check_header(name, value)
        if self.body is not None:
            if not isinstance(self.body, str):
                raise TypeError(
                    f"StatusFault.body must be JSON text, got {type(self.body).__name__}"
                    " (Fault.status takes any JSON value)"
                )
            try:
                json.loads(self.body)
            except ValueError as exc:
                raise ValueError(f"StatusFault.body is not JSON: {exc}") from None


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
