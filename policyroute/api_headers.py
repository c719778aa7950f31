"""Credential headers a call may not carry.

``api_key`` is refused at the call because it would reach every candidate of the route,
another provider's included (see :func:`policyroute.request_checks.refuse_takeovers`). A key
passed as a header in ``extra_headers`` (or litellm's ``headers``) does the same and more:
litellm sends the call's headers after the deployment's own, so ``Authorization: Bearer
sk-...`` replaces the policy's key on an OpenAI deployment and goes to an Anthropic fallback
beside its ``x-api-key``. Such headers are refused the same way; any other header passes.

Example:
    >>> refuse_credential_headers({"extra_headers": {"X-Trace": "t1"}})
    >>> try:
    ...     refuse_credential_headers({"extra_headers": {"Authorization": "Bearer sk-..."}})
    ... except RequestError as exc:
    ...     print(str(exc)[:67])
    request parameter 'extra_headers' may not carry the 'Authorization'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policyroute.errors import RequestError

__all__ = ["refuse_credential_headers"]

# The headers providers read a key from: OpenAI and OpenAI-compatible servers, proxies,
# Anthropic, Azure OpenAI, Gemini.
_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"}
)
_HEADER_PARAMS = ("extra_headers", "headers")


def refuse_credential_headers(params: Mapping[str, Any]) -> None:
    """Raise :class:`RequestError` when ``extra_headers`` or ``headers`` in ``params`` set a
    credential header (any case) to a value; the value is never shown."""
    for param in _HEADER_PARAMS:
        headers = params.get(param)
        if not isinstance(headers, Mapping):
            continue  # None, or a shape for litellm to judge
        for name, value in headers.items():
            if value is None or not isinstance(name, str):
                continue
            if name.lower() in _CREDENTIAL_HEADERS:
                raise RequestError(
                    f"request parameter {param!r} may not carry the {name!r} header: a"
                    " credential would be sent to every candidate of the route, another"
                    " provider's included, in place of the deployment's own key; set it on"
                    " the policy's model (for a key: api_key: ${ENV_VAR})"
                )
