"""What litellm tells about a stream, fit to hand on: its ``_hidden_params`` without credentials.

litellm's stream wrapper carries ``_hidden_params`` (``model_id``, ``api_base``, the
provider's response headers under ``additional_headers``...), which litellm callers and
observability tools read. ``api_base`` is the deployment's as configured, so a password or a
``?key=`` in its URL would come along; a provider's headers may set a cookie or echo a
credential. :func:`hidden_params_of` makes a read-only copy with those redacted.

Example:
    >>> class Wrapper:
    ...     custom_llm_provider = "openai"
    ...     _hidden_params = {"api_base": "https://u:pw-123@gw/v1", "model_id": None}
    >>> shown = hidden_params_of(Wrapper(), secrets=())
    >>> shown["api_base"], shown["custom_llm_provider"]
    ('https://u:[REDACTED]@gw/v1', 'openai')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from policyroute.costs.redact import scrub

__all__ = ["NO_HIDDEN_PARAMS", "hidden_params_of", "scrubbed"]

NO_HIDDEN_PARAMS: Mapping[str, Any] = MappingProxyType({})
"""The hidden params of a stream that has none (not litellm's, or not open yet)."""

# Response headers whose values are credentials whatever they look like.
_CREDENTIAL_HEADER = re.compile(r"(?i)cookie|authorization")
_REDACTED = "[REDACTED]"


def hidden_params_of(stream: Any, secrets: Iterable[str]) -> Mapping[str, Any]:
    """A read-only copy of ``stream``'s ``_hidden_params`` with ``secrets`` (the attempt's
    credential values, :func:`~policyroute.costs.redact.param_secrets`) and anything shaped
    like a credential redacted; :data:`NO_HIDDEN_PARAMS` for a stream without them.

    ``custom_llm_provider`` is added from the wrapper when litellm left it out (its chunks
    carry it, its stream's ``_hidden_params`` may not).

    Example:
        >>> hidden_params_of(iter([]), secrets=()) is NO_HIDDEN_PARAMS
        True
    """
    hidden = getattr(stream, "_hidden_params", None)
    if not isinstance(hidden, Mapping):
        return NO_HIDDEN_PARAMS
    shown = scrubbed(hidden, secrets)
    provider = getattr(stream, "custom_llm_provider", None)
    if isinstance(provider, str):
        shown.setdefault("custom_llm_provider", provider)
    return MappingProxyType(shown)


def scrubbed(hidden: Mapping[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    """A copy of a litellm ``_hidden_params`` mapping (a stream's or a response's) with
    ``secrets`` and anything shaped like a credential redacted, and credential headers hidden.

    Example:
        >>> scrubbed({"api_base": "https://u:pw-1@gw/v1", "response_cost": 0.1}, ())
        {'api_base': 'https://u:[REDACTED]@gw/v1', 'response_cost': 0.1}
    """
    known = tuple(secrets)
    return {str(name): _shown(str(name), value, known) for name, value in hidden.items()}


def _shown(name: str, value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        if _CREDENTIAL_HEADER.search(name):
            return _REDACTED
        return scrub(value, secrets)
    if isinstance(value, Mapping):  # additional_headers
        return {str(k): _shown(str(k), v, secrets) for k, v in value.items()}
    return value
