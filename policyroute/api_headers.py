"""The headers a call may carry: what HTTP can send, and no credentials.

``api_key`` is refused at the call because it would reach every candidate of the route,
another provider's included (see :func:`policyroute.request_checks.refuse_takeovers`). A key
passed as a header in ``extra_headers`` (or litellm's ``headers``) does the same and more:
litellm sends the call's headers after the deployment's own, so ``Authorization: Bearer
sk-...`` replaces the policy's key on an OpenAI deployment and goes to an Anthropic fallback
beside its ``x-api-key``. Such headers are refused the same way.

A header httpx cannot send is refused too. It fails inside the provider call (httpx raises
``TypeError`` for a value that is not ``str`` or ``bytes`` and ``UnicodeEncodeError`` for a
string outside ASCII; aiohttp and h11 refuse a line break), which reads as the provider's
failure and would be retried and fallen over on. Any other header passes.

Example:
    >>> refuse_credential_headers({"extra_headers": {"X-Trace": "t1"}})
    >>> try:
    ...     refuse_credential_headers({"extra_headers": {"Authorization": "Bearer sk-..."}})
    ... except RequestError as exc:
    ...     print(str(exc)[:67])
    request parameter 'extra_headers' may not carry the 'Authorization'
    >>> try:
    ...     refuse_credential_headers({"extra_headers": {"X-Trace": None}})
    ... except RequestError as exc:
    ...     print(exc)
    request parameter 'extra_headers' header 'X-Trace' must be a string or bytes, got NoneType
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policyroute.errors import RequestError

__all__ = [
    "HEADER_PARAMS",
    "header_name_problem",
    "header_value_problem",
    "merged_headers",
    "refuse_credential_headers",
]

# The headers providers read a key from: OpenAI and OpenAI-compatible servers, proxies,
# Anthropic, Azure OpenAI, Gemini.
_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"}
)
HEADER_PARAMS = ("extra_headers", "headers")
"""The call parameters litellm sends as HTTP headers."""
# ``default_headers`` is ChatOpenAI's, which ChatPolicyRoute sends as ``extra_headers``: checked
# where it is written, so that the error names what the caller wrote.
_CHECKED_PARAMS = (*HEADER_PARAMS, "default_headers")

# What httpx can send, read as Latin-1 so a bytes header is judged on its octets. A name is
# an RFC 9110 token. In a value, aiohttp (litellm's async transport) refuses every control
# character but tab (aiohttp/http_writer.py, _FORBIDDEN_HEADER_CHARS_RE), and h11 (the sync
# one) a space or tab at either end.
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_name_problem(name: Any) -> str | None:
    """What keeps httpx from sending a header named ``name``, or ``None`` if it can: a name
    is a ``str`` or ``bytes`` RFC 9110 token.

    Example:
        >>> header_name_problem(b"X-Trace") is None
        True
        >>> header_name_problem("X Trace")
        "header name 'X Trace' is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
    """
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    if isinstance(name, str) and _TOKEN.match(name):
        return None
    return f"header name {name!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"


def header_value_problem(value: Any) -> str | None:
    """What keeps httpx from sending ``value`` as a header's value, or ``None`` if it can.

    A value is a ``str`` or ``bytes``. httpx encodes a string as ASCII; aiohttp refuses a
    control character other than tab (a line break, NUL, DEL...), and h11 a space or tab at
    either end. Bytes may hold any other octet. The value itself is never quoted: a header may
    carry a secret.

    Example:
        >>> header_value_problem("t-1") is None
        True
        >>> header_value_problem(None)
        'must be a string or bytes, got NoneType'
        >>> header_value_problem("caf\\u00e9")
        'holds a character outside ASCII, which httpx cannot encode; pass it percent-encoded'
    """
    if isinstance(value, bytes):
        text = value.decode("latin-1")
    elif isinstance(value, str):
        if not value.isascii():
            return (
                "holds a character outside ASCII, which httpx cannot encode;"
                " pass it percent-encoded"
            )
        text = value
    else:
        return f"must be a string or bytes, got {type(value).__name__}"
    if _CONTROL.search(text):
        return (
            "holds a line break or another control character (only tab may appear),"
            " which HTTP headers cannot carry; remove it"
        )
    if text.strip(" \t") != text:
        return "begins or ends with a space or tab, which HTTP/1.1 refuses to send; strip it"
    return None


def merged_headers(*layers: Any) -> dict[Any, Any] | None:
    """The headers of ``layers`` (mappings, or ``None`` for a layer that sets none) merged
    name by name, a later layer's header replacing an earlier one's of the same name in any
    case (HTTP names are case-insensitive: both would be sent, and a server reads one of
    them); ``None`` when no layer is a mapping.

    Example:
        >>> merged_headers({"X-Team": "a", "X-Env": "prod"}, None, {"x-team": "b"})
        {'X-Env': 'prod', 'x-team': 'b'}
    """
    merged: dict[Any, Any] | None = None
    for layer in layers:
        if not isinstance(layer, Mapping):
            continue
        if merged is None:
            merged = dict(layer)
            continue
        for name, value in layer.items():
            folded = _folded(name)
            for known in [k for k in merged if _folded(k) == folded]:
                del merged[known]
            merged[name] = value
    return merged


def _folded(name: Any) -> Any:
    if isinstance(name, bytes):
        return name.decode("latin-1").lower()
    return name.lower() if isinstance(name, str) else name


def refuse_credential_headers(params: Mapping[str, Any]) -> None:
    """Raise :class:`RequestError` when ``extra_headers``, ``headers`` or ``default_headers``
    (ChatOpenAI's) in ``params`` is not
    a mapping, holds a header httpx cannot send (see :func:`header_name_problem` and
    :func:`header_value_problem`), or sets a
    credential header (any case, named in text or bytes); no value is ever shown."""
    for param in _CHECKED_PARAMS:
        headers = params.get(param)
        if headers is None:
            continue
        if not isinstance(headers, Mapping):
            # litellm's providers merge it with ``{**headers}`` or ``dict.update``, and the
            # credential check below must read it: only a mapping has one meaning.
            raise RequestError(
                f"request parameter {param!r} must be a mapping of header names to values,"
                f" got {type(headers).__name__}"
            )
        for name, value in headers.items():
            problem = header_name_problem(name)
            if problem is not None:
                raise RequestError(f"request parameter {param!r}: {problem}")
            problem = header_value_problem(value)
            if problem is not None:
                raise RequestError(f"request parameter {param!r} header {name!r} {problem}")
            text = name.decode("latin-1") if isinstance(name, bytes) else name
            if text.lower() in _CREDENTIAL_HEADERS:
                raise RequestError(
                    f"request parameter {param!r} may not carry the {text!r} header: a"
                    " credential would be sent to every candidate of the route, another"
                    " provider's included, in place of the deployment's own key; set it on"
                    " the policy's model (for a key: api_key: ${ENV_VAR})"
                )
