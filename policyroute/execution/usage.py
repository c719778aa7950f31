"""Read token usage out of litellm responses and stream chunks.

Example:
    >>> usage_of({"usage": {"prompt_tokens": 9, "completion_tokens": 3}}).total_tokens
    12
"""

from __future__ import annotations

from typing import Any

# The reader that skips pydantic's slow path for missing attributes: litellm's usage objects
# lack most of the keys read here, and each miss would raise and catch AttributeError twice.
from policyroute.costs.actual import _get
from policyroute.execution.hooks import Usage

__all__ = ["chunk_text", "has_content", "usage_of"]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_of(response: Any) -> Usage | None:
    """The :class:`~policyroute.execution.hooks.Usage` of a response or chunk, if it has one.

    Cache writes are read from ``cache_creation_input_tokens`` (Anthropic, via litellm).
    """
    usage = _get(response, "usage")
    if usage is None:
        return None
    prompt_details = _get(usage, "prompt_tokens_details")
    completion_details = _get(usage, "completion_tokens_details")
    return Usage(
        input_tokens=_int(_get(usage, "prompt_tokens")),
        output_tokens=_int(_get(usage, "completion_tokens")),
        cache_read_tokens=_int(_get(prompt_details, "cached_tokens")),
        cache_write_tokens=_int(_get(usage, "cache_creation_input_tokens")),
        reasoning_tokens=_int(_get(completion_details, "reasoning_tokens")),
    )


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


def chunk_text(chunk: Any) -> str:
    """The text content of a stream chunk (first choice), or ``""``."""
    choices = _get(chunk, "choices")
    if not choices:
        return ""
    text = _get(_get(choices[0], "delta"), "content")
    return text if isinstance(text, str) else ""
