"""Read token usage out of litellm responses and stream chunks.

Example:
    >>> usage_of({"usage": {"prompt_tokens": 9, "completion_tokens": 3}}).total_tokens
    12
"""

from __future__ import annotations

from typing import Any

from policyroute._fields import read as _get
from policyroute.costs.actual import _usage_from_object, _usage_object
from policyroute.execution.hooks import Usage

__all__ = ["chunk_text", "has_content", "has_finish_reason", "usage_of"]


def usage_of(response: Any) -> Usage | None:
    """The :class:`~policyroute.execution.hooks.Usage` of a response or chunk, if it has one.

    Read as :func:`~policyroute.costs.actual.usage_from_response` reads it (cache reads and
    writes, reasoning), so an attempt's usage and its receipt's agree; ``None`` when the
    response or chunk carries no usage at all (most stream chunks).
    """
    usage = _usage_object(response)
    return None if usage is None else _usage_from_object(usage)


def has_content(chunk: Any) -> bool:
    """Whether a stream chunk carries answer content: text, a tool call or reasoning text."""
    choices = _get(chunk, "choices")
    if not choices:
        return False
    for choice in choices:
        delta = _get(choice, "delta")
        if delta is None:
            continue
        if _get(delta, "content") or _get(delta, "tool_calls") or _get(delta, "function_call"):
            return True
    return False


def has_finish_reason(chunk: Any) -> bool:
    """Whether a stream chunk ends one of its choices (carries a ``finish_reason``).

    Example:
        >>> has_finish_reason({"choices": [{"delta": {}, "finish_reason": "stop"}]})
        True
    """
    choices = _get(chunk, "choices")
    return bool(choices) and any(_get(choice, "finish_reason") for choice in choices)


def chunk_text(chunk: Any) -> str:
    """The text content of a stream chunk (first choice), or ``""``."""
    choices = _get(chunk, "choices")
    if not choices:
        return ""
    text = _get(_get(choices[0], "delta"), "content")
    return text if isinstance(text, str) else ""
