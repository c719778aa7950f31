"""Read how long a rate limit lasts from the reset headers providers send with a 429.

Providers that answer 429 without ``Retry-After`` still say when their limits reset:

- OpenAI, Azure OpenAI and OpenAI-compatible gateways (Groq, vLLM, ...):
  ``x-ratelimit-remaining-{requests,tokens}`` and ``x-ratelimit-reset-{requests,tokens}``, the
  reset as a Go duration (``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``, ``"0.5s"``);
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{remaining,reset}``,
  the reset as an RFC 3339 time (``"2025-01-01T00:00:30Z"``);
- OpenRouter and other gateways: a single ``x-ratelimit-remaining`` and ``x-ratelimit-reset``,
  the reset as a number (read by :func:`parse_reset_number`): a Unix time in milliseconds
  (OpenRouter: ``"1741305600000"``), a Unix time in seconds (``"1741305600"``), or seconds
  from now (``"30"``). The number's size tells them apart: from 10**12 up it is milliseconds
  since the epoch, from 10**9 up seconds since the epoch, below that seconds to wait. No reading
  is ambiguous for a real header: 10**9 seconds after the epoch and 10**12 milliseconds after
  it are the same instant (2001-09-09), so a time in the other unit would lie before 2001 or
  after the year 33000, and a wait of 10**9 seconds is over 31 years. An RFC 3339 time or a Go
  duration in this header is read too.

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
4. A wait is never negative. A reset time already past (RFC 3339 or Unix) gives no hint
   (``None``), like a past ``Retry-After`` date; a duration of ``"0s"`` or a wait of ``"0"``
   asks for no wait (``0.0``).

The executor uses this only for ``rate_limit`` errors that carry no ``Retry-After`` or
``retry-after-ms`` (plain or ``llm_provider-``; see
:func:`policyroute.execution.classify.retry_after_seconds`); the wait found then takes
Retry-After's place, ``retry_after_max`` cap and fall-over included.

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

__all__ = [
    "parse_go_duration",
    "parse_reset_number",
    "parse_rfc3339",
    "rate_limit_reset_seconds",
]

# (remaining header, reset header, how the reset is written) for each limit a provider keeps.
_OPENAI_LIMITS = ("requests", "tokens")
_ANTHROPIC_LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")
_LIMITS: tuple[tuple[str, str, str], ...] = (
    *((f"x-ratelimit-remaining-{n}", f"x-ratelimit-reset-{n}", "duration") for n in _OPENAI_LIMITS),
    *(
        (f"anthropic-ratelimit-{n}-remaining", f"anthropic-ratelimit-{n}-reset", "time")
        for n in _ANTHROPIC_LIMITS
    ),
    ("x-ratelimit-remaining", "x-ratelimit-reset", "number"),
)
# A litellm proxy forwards an upstream provider's headers under this prefix.
_PREFIXES = ("", "llm_provider-")

# No real header is longer; bounding the text keeps parsing cheap on hostile input.
_MAX_VALUE_CHARS = 64

# A reset number from here up is a Unix time in seconds, and from 1000 times that up one in
# milliseconds: the same instant, 2001-09-09T01:46:40Z (see the module docstring).
_EPOCH_SECONDS_FROM = 1e9
_EPOCH_MILLISECONDS_FROM = 1e12

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


def parse_reset_number(text: str, *, now: datetime) -> float | None:
    """Seconds to wait for an ``x-ratelimit-reset`` number: a Unix time or a wait.

    From 10**12 up ``text`` is a Unix time in milliseconds, from 10**9 up one in seconds, below
    that a number of seconds from ``now`` (an aware time). Returns ``None`` for anything that
    is not a finite number of at least 0, and for a Unix time already past (like a past
    ``Retry-After`` date, it no longer says when the limit frees up).

    Example:
        >>> t0 = datetime(2025, 3, 7, tzinfo=timezone.utc)  # Unix time 1741305600
        >>> [parse_reset_number(t, now=t0) for t in ("1741305612500", "1741305630", "20", "0")]
        [12.5, 30.0, 20.0, 0.0]
        >>> parse_reset_number("1741305000", now=t0) is None  # ten minutes ago
        True
    """
    value = _count(text)
    if value is None:
        return None
    if value < _EPOCH_SECONDS_FROM:
        return value
    epoch = value / 1000.0 if value >= _EPOCH_MILLISECONDS_FROM else value
    wait = epoch - now.timestamp()
    # Milliseconds, as sent, are what a Unix time can say: no float dust below them.
    return round(wait, 6) if wait > 0 else None


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
    if form == "number":
        # A gateway may write this one as the other families do; a number is read first.
        wait = parse_reset_number(text, now=now)
        if wait is not None or _count(text) is not None:
            return wait
        duration = parse_go_duration(text)
        if duration is not None:
            return duration
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
