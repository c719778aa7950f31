"""Reading a provider's token usage into counts: every shape, every impossible count.

litellm normalises every provider's usage to the OpenAI shape, and policyroute reads only that
shape (plus the raw provider shapes, for plain dicts that never went through litellm):

- OpenAI: ``prompt_tokens`` (cached reads included, listed in
  ``prompt_tokens_details.cached_tokens``), ``completion_tokens`` (reasoning included, listed in
  ``completion_tokens_details.reasoning_tokens``).
- Anthropic: the wire reports ``input_tokens`` *without* ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``; litellm (``AnthropicConfig.calculate_usage``) adds both to
  ``prompt_tokens`` and lists them as ``prompt_tokens_details.cached_tokens`` and
  ``cache_creation_tokens`` (mirrored as ``cache_write_tokens``).
- Gemini: ``promptTokenCount`` (cached content included) becomes ``prompt_tokens``;
  ``thoughtsTokenCount`` is added to ``completion_tokens`` and listed as reasoning tokens.

Counts arrive as ints, whole floats or digit strings (read as litellm's pydantic ``Usage`` reads
them); a count no provider can mean (negative, or past :data:`MAX_TOKENS`) is set to 0 by
:func:`sound_usage` before anything is priced.

Example:
    >>> usage_from_response({"usage": {"prompt_tokens": 10, "completion_tokens": 5}})
    Usage(input_tokens=10, output_tokens=5, cache_read_tokens=0, cache_write_tokens=0, \
reasoning_tokens=0, cache_write_1h_tokens=0)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from typing import Any

from policyroute._fields import read as _get
from policyroute._fields import reader
from policyroute.execution.hooks import Usage

__all__ = ["MAX_TOKENS", "sound_usage", "usage_from_response"]

_log = logging.getLogger("policyroute.costs")

MAX_TOKENS = 10**10
"""More tokens than any one response can hold (context windows are a few million): a count
past it is corrupt, like a negative one."""

# Every key read from a usage object (all shapes), for ``reader``.
_USAGE_KEYS = (
    "promptTokenCount",
    "thoughtsTokenCount",
    "candidatesTokenCount",
    "cachedContentTokenCount",
    "prompt_tokens",
    "prompt_tokens_details",
    "completion_tokens",
    "completion_tokens_details",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "input_tokens",
    "output_tokens",
    "cache_creation",
    "_cache_read_input_tokens",
    "_cache_creation_input_tokens",
    "reasoning_tokens",
)


def _int(value: Any) -> int:
    """A count as sent: ints, whole floats and digit strings (``"12"``); 0 for anything else
    (NaN, other text, objects).

    Negative counts are kept here (the executor detects them and counts tokens locally);
    :func:`sound_usage` clamps whatever is left before anything is priced.
    """
    if type(value) is int:
        return value
    if value is None:  # the usual absent field, before the slower checks
        return 0
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        return _int_text(value)
    return 0


# Digits past this many cannot be a count (MAX_TOKENS has 11), and Python refuses to parse
# more than 4300 of them: longer text reads as a count just past MAX_TOKENS.
_MAX_DIGITS = 4000


def _int_text(text: str) -> int:
    """A count sent as text, read as litellm's ``Usage`` reads it (pydantic's lax integers:
    surrounding blanks and a sign allowed) so that a receipt counts the tokens
    ``litellm.completion_cost`` prices; anything but ASCII digits reads as 0.

    Example:
        >>> _int_text(" 12 "), _int_text("-3"), _int_text("1.5"), _int_text("12abc")
        (12, -3, 0, 0)
    """
    digits = text.strip()
    sign = -1 if digits[:1] == "-" else 1
    if digits[:1] in ("-", "+"):
        digits = digits[1:]
    # isdigit alone also accepts superscripts and other scripts' digits, which int() refuses
    # or reads differently from pydantic.
    if not (digits.isascii() and digits.isdigit()):
        return 0
    if len(digits) > _MAX_DIGITS:
        return sign * (MAX_TOKENS + 1)
    return sign * int(digits)


def _first(*values: Any) -> int:
    """The first value that is a positive count, else 0 (providers send 0 and None alike)."""
    for value in values:
        if value is None:  # most are absent, or ints: no call of _int for either
            continue
        n = value if type(value) is int else _int(value)
        if n:
            return n
    return 0


def _usage_object(response: Any) -> Any:
    usage = _get(response, "usage")
    if usage is not None:
        return usage
    # A raw Gemini body carries ``usageMetadata``; a bare usage mapping may be passed directly.
    meta = _get(response, "usageMetadata")
    if meta is not None:
        return meta
    if isinstance(response, Mapping) and (
        "prompt_tokens" in response or "input_tokens" in response
    ):
        return response
    return None


def usage_from_response(response: Any) -> Usage:
    """Token counts of a litellm ``ModelResponse`` (or a plain dict of one), zeros if absent.

    ``input_tokens`` always includes cache reads and writes and ``output_tokens`` includes
    reasoning, whatever the provider's own convention. Counts no provider can mean (negative,
    or past :data:`MAX_TOKENS`) read as 0, with a warning (see :func:`sound_usage`).

    Example:
        >>> usage_from_response({"usage": {"input_tokens": 10, "output_tokens": 3,
        ...                                "cache_read_input_tokens": 90}}).input_tokens
        100
    """
    usage = _usage_object(response)
    return Usage() if usage is None else sound_usage(_usage_from_object(usage))


_COUNT_FIELDS = tuple(f.name for f in dataclasses.fields(Usage))


def sound_usage(usage: Usage, model: str = "") -> Usage:
    """``usage`` with every impossible count (negative, or past :data:`MAX_TOKENS`) set to 0.

    A broken provider's usage must neither lower a bill below zero nor charge a budget
    10^24 dollars; the bad counts are logged at WARNING so that the gap is seen. Sound usage
    is returned as it is (the same object).

    Example:
        >>> sound_usage(Usage(input_tokens=100, output_tokens=-5))
        Usage(input_tokens=100, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0, \
reasoning_tokens=0, cache_write_1h_tokens=0)
    """
    if (
        0 <= usage.input_tokens <= MAX_TOKENS
        and 0 <= usage.output_tokens <= MAX_TOKENS
        and 0 <= usage.cache_read_tokens <= MAX_TOKENS
        and 0 <= usage.cache_write_tokens <= MAX_TOKENS
        and 0 <= usage.reasoning_tokens <= MAX_TOKENS
        and 0 <= usage.cache_write_1h_tokens <= MAX_TOKENS
    ):
        return usage
    bad = {
        name: value
        for name in _COUNT_FIELDS
        if not 0 <= (value := getattr(usage, name)) <= MAX_TOKENS
    }
    _log.warning(
        "impossible token count(s) from %s read as 0: %s",
        model or "the provider",
        ", ".join(f"{name}={value}" for name, value in bad.items()),
    )
    return dataclasses.replace(usage, **dict.fromkeys(bad, 0))


def _usage_from_object(usage: Any) -> Usage:
    """:func:`usage_from_response` of the usage object itself (OpenAI, Anthropic or Gemini
    shape), for callers that already hold it."""
    get = reader(usage, _USAGE_KEYS)  # runs for every answer: one call per key read
    if get("promptTokenCount") is not None:  # raw Gemini usageMetadata
        thoughts = _int(get("thoughtsTokenCount"))
        return Usage(
            input_tokens=_int(get("promptTokenCount")),
            output_tokens=_int(get("candidatesTokenCount")) + thoughts,
            cache_read_tokens=_int(get("cachedContentTokenCount")),
            reasoning_tokens=thoughts,
        )
    prompt = get("prompt_tokens")
    top_read = get("cache_read_input_tokens")
    top_write = get("cache_creation_input_tokens")
    if prompt is None and get("input_tokens") is not None:
        # Raw Anthropic usage: input_tokens excludes the cached parts; normalise as litellm does.
        read, write = _int(top_read), _int(top_write)
        return Usage(
            input_tokens=_int(get("input_tokens")) + read + write,
            output_tokens=_int(get("output_tokens")),
            cache_read_tokens=read,
            cache_write_tokens=write,
            cache_write_1h_tokens=_int(_get(get("cache_creation"), "ephemeral_1h_input_tokens")),
        )
    prompt_details = get("prompt_tokens_details")
    completion_details = get("completion_tokens_details")
    if prompt_details is None:  # the usual case: no cache figures in the details
        detail_read = detail_write = detail_creation = None
        write_1h = 0
    else:
        detail_read = _get(prompt_details, "cached_tokens")
        detail_write = _get(prompt_details, "cache_write_tokens")
        detail_creation = _get(prompt_details, "cache_creation_tokens")
        write_1h = _int(
            _get(_get(prompt_details, "cache_creation_token_details"), "ephemeral_1h_input_tokens")
        )
    return Usage(
        input_tokens=_int(prompt),
        output_tokens=_int(get("completion_tokens")),
        cache_read_tokens=_first(detail_read, top_read, get("_cache_read_input_tokens")),
        cache_write_tokens=_first(
            detail_write, detail_creation, top_write, get("_cache_creation_input_tokens")
        ),
        reasoning_tokens=_first(
            None if completion_details is None else _get(completion_details, "reasoning_tokens"),
            get("reasoning_tokens"),
        ),
        cache_write_1h_tokens=write_1h,
    )
