"""Read how long a rate limit lasts from the reset headers providers send with a 429.

Providers that answer 429 without ``Retry-After`` still say when their limits reset:

- OpenAI, Azure OpenAI and OpenAI-compatible gateways (Groq, vLLM, ...):
  ``x-ratelimit-remaining-{requests,tokens}`` and ``x-ratelimit-reset-{requests,tokens}``, the
  reset as a Go duration (``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``, ``"0.5s"``);
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{remaining,reset}``,
  the reset as an RFC 3339 time (``"2025-01-01T00:00:30Z"``).

A litellm proxy in front of a provider passes the provider's headers on with an
``llm_provider-`` prefix; they are read too when the plain header is absent.

The rule (:func:`rate_limit_reset_seconds`):

1. Each limit is a (remaining, reset) pair read from the same header family. A limit whose
   reset is absent or unreadable is left out; so is a remaining count that is unreadable
   (the limit then counts as "not known to be exhausted").
2. If some limit says ``remaining`` 0, the wait is the longest reset among those exhausted
   limits: the call cannot pass before every one of them has reset. If none of the exhausted
   limits has a readable reset, there is no hint (``None``): the others' resets do not say when
   the exhausted one frees up.
3. Otherwise (no remaining count is 0, or none is sent: a request larger than what is left of
   a token budget), the wait is the longest reset of all: only then is every limit restored.
4. A wait is never negative. A reset time already past gives no hint (``None``), like a past
   ``Retry-After`` date; a duration of ``"0s"`` asks for no wait (``0.0``).

The executor uses this only for ``rate_limit`` errors that carry no ``Retry-After`` or
``retry-after-ms`` (see :func:`policyroute.execution.classify.classify`); the wait found then
takes Retry-After's place, ``retry_after_max`` cap and fall-over included.

Example:
    >>> rate_limit_reset_seconds({
    ...     "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms",
    ...     "x-ratelimit-remaining-tokens": "9000", "x-ratelimit-reset-tokens": "6m0s",
    ... })
    0.3
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["parse_go_duration", "parse_rfc3339", "rate_limit_reset_seconds"]

# (remaining header, reset header, how the reset is written) for each limit a provider keeps.
_OPENAI_LIMITS = ("requests", "tokens")
_ANTHROPIC_LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")
_LIMITS: tuple[tuple[str, str, str], ...] = (
    *((f"x-ratelimit-remaining-{n}", f"x-ratelimit-reset-{n}", "duration") for n in _OPENAI_LIMITS),
    *(
        (f"anthropic-ratelimit-{n}-remaining", f"anthropic-ratelimit-{n}-reset", "time")
        for n in _ANTHROPIC_LIMITS
    ),
)
# A litellm proxy forwards an upstream provider's headers under this prefix.
_PREFIXES = ("", "llm_provider-")

# No real header is longer; bounding the text keeps parsing cheap on hostile input.
_MAX_VALUE_CHARS = 64

_GO_UNITS: Mapping[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 MICRO SIGN
    "μs": 1e-6,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def rate_limit_reset_seconds(headers: Any, *, now: datetime | None = None) -> float | None:
    """Seconds until the rate limit that refused the call resets, from ``headers``.

    ``headers`` is any mapping of response headers (``httpx.Headers``, a ``dict``; names are
    matched without regard to case). ``now`` is when the answer came, for RFC 3339 resets
    (naive is taken as UTC); the current time by default. Returns ``None`` when the headers
    give no usable hint. See the module docstring for the rule.

    Example:
        >>> rate_limit_reset_seconds({"x-ratelimit-reset-tokens": "1m30s"})
        90.0
        >>> t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
        >>> rate_limit_reset_seconds({
        ...     "anthropic-ratelimit-tokens-remaining": "0",
        ...     "anthropic-ratelimit-tokens-reset": "2025-01-01T00:00:12Z",
        ... }, now=t0)
        12.0
        >>> rate_limit_reset_seconds({"x-ratelimit-reset-requests": "soon"}) is None
        True
    """
    lowered = _lowered(headers)
    if not lowered:
        return None
    when = now or datetime.now(timezone.utc)
    if when.tzinfo is None:  # a naive time cannot be compared with an RFC 3339 one: UTC
        when = when.replace(tzinfo=timezone.utc)
    exhausted: list[float | None] = []
    others: list[float] = []
    for remaining_name, reset_name, form in _LIMITS:
        pair = _pair(lowered, remaining_name, reset_name)
        if pair is None:
            continue
        remaining_text, reset_text = pair
        wait = _wait(reset_text, form, when)
        remaining = _count(remaining_text)
        if remaining == 0:
            exhausted.append(wait)
        elif wait is not None:
            others.append(wait)
    if exhausted:
        known = [w for w in exhausted if w is not None]
        return max(known) if known else None
    return max(others) if others else None


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go duration (``time.Duration.String``: ``"1h2m3.5s"``, ``"20ms"``).

    Returns ``None`` for anything else, for a negative duration, and for one too large to be
    a float. As in Go, ``"0"`` is the only duration without a unit.

    Example:
        >>> [parse_go_duration(t) for t in ("6m0s", "20ms", "1h2m3.5s", "0.5s", "0", "1.5")]
        [360.0, 0.02, 3723.5, 0.5, 0.0, None]
    """
    text = text.strip()
    if text.startswith("+"):
        text = text[1:]
    if text == "0":
        return 0.0
    if not text or len(text) > _MAX_VALUE_CHARS:
        return None
    total = 0.0
    position = 0
    for match in _GO_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or not math.isfinite(total):
        return None
    # Summing float parts leaves binary dust (0.30000000000000004); Go counts nanoseconds.
    return round(total, 9)


def parse_rfc3339(text: str) -> datetime | None:
    """The aware time an RFC 3339 timestamp names, or ``None`` if ``text`` is not one.

    Fractions of any length are read (Anthropic sends whole seconds; others send more
    digits than :meth:`datetime.fromisoformat` takes on Python 3.10).

    Example:
        >>> parse_rfc3339("2025-01-01T00:00:30.25Z").isoformat()
        '2025-01-01T00:00:30.250000+00:00'
        >>> parse_rfc3339("in 30 seconds") is None
        True
    """
    text = text.strip()
    match = _RFC3339.fullmatch(text) if len(text) <= _MAX_VALUE_CHARS else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    if offset in ("Z", "z"):
        zone = timezone.utc
    else:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            return None
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        # A leap second (:60) is read as the first instant of the next minute.
        leap = second == 60
        moment = datetime(year, month, day, hour, minute, 59 if leap else second, tzinfo=zone)
    except ValueError:
        return None
    if leap:
        moment += timedelta(seconds=1)
    if fraction:
        moment += timedelta(seconds=float(fraction))
    return moment


# --------------------------------------------------------------------------- internals


def _lowered(headers: Any) -> dict[str, str]:
    """``headers`` as a dict keyed by lower-case name (a plain dict is case-sensitive)."""
    try:
        items = list(headers.items())
    except (AttributeError, TypeError):
        return {}
    return {str(name).lower(): str(value) for name, value in items if value is not None}


def _pair(lowered: Mapping[str, str], remaining: str, reset: str) -> tuple[str | None, str] | None:
    # Both halves come from the same family, so a proxy's own counts are never paired with
    # the upstream provider's reset.
    for prefix in _PREFIXES:
        reset_text = lowered.get(prefix + reset)
        if reset_text is not None:
            return lowered.get(prefix + remaining), reset_text
    return None


def _wait(text: str, form: str, now: datetime) -> float | None:
    if form == "duration":
        return parse_go_duration(text)
    moment = parse_rfc3339(text)
    if moment is None:
        return None
    wait = (moment - now).total_seconds()
    return wait if wait > 0 else None


def _count(text: str | None) -> float | None:
    if text is None or len(text) > _MAX_VALUE_CHARS:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None
