"""Budget windows and scopes: which line of a budget a call is charged to.

A budget line is one budget, one scope value and one window, keyed ``budget/scope/window``
(budget and scope percent-encoded). Windows:

- ``call``: nothing is stored; a call's worst case must fit the limit on its own.
- calendar ``day``, ``week`` (ISO weeks, starting Monday) and ``month``, in the budget's IANA
  time zone. Boundaries are computed from calendar dates, never by adding 86400 seconds, so a
  day with a DST change is 23 or 25 hours long and a day whose midnight does not exist starts at
  the transition.
- rolling durations (``6h``): a sliding window kept as 60 buckets of 1/60 of its length (see
  :mod:`policyroute.budgets.stores.base` for why that is exact-or-stricter).

Scopes come from the budget's ``per``: ``metadata.<path>`` (a dotted lookup in the call's
metadata), ``route`` (the decision's route), ``model`` (the candidate's alias) or ``tags`` (one
line per tag). A missing value is the scope ``"<none>"``: such calls share one line and are
still limited. A budget without ``per`` has the single scope ``"*"``.

Example:
    >>> w = window_for(WindowSpec(kind="day", timezone="Europe/Paris"), 1735689600.0)
    >>> w.key, w.end - w.start
    ('day:2025-01-01', 86400.0)
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from policyroute.budgets.stores.base import WINDOW_MARGIN_SECONDS
from policyroute.costs.receipt_json import utf8_safe
from policyroute.errors import RequestError
from policyroute.policy.facts import MISSING, RequestFacts, fact_getter
from policyroute.policy.model import WindowSpec
from policyroute.request import Request

__all__ = [
    "GLOBAL_SCOPE",
    "MISSING_SCOPE",
    "ROLLING_BUCKETS",
    "Window",
    "budget_prefix",
    "line_key",
    "parse_line_key",
    "scope_values",
    "window_for",
]

GLOBAL_SCOPE = "*"
MISSING_SCOPE = "<none>"
ROLLING_BUCKETS = 60


@dataclass(frozen=True, slots=True)
class Window:
    """The window a timestamp falls in.

    ``start``/``end`` bound calendar windows; for a rolling window they are the sliding span
    ending now. ``expires_at`` is when the line may be dropped from a store.
    """

    key: str
    start: float
    end: float
    expires_at: float
    bucket_seconds: float | None = None
    span_seconds: float | None = None

    @property
    def persistent(self) -> bool:
        """False for ``call`` windows, which keep no state."""
        return self.key != "call"


# The last calendar window computed per (kind, time zone). A timestamp falls in a calendar window
# exactly when start <= now < end, so a hit returns what the computation would (and saves the
# time-zone arithmetic, most of this function's cost, on nearly every call).
_CALENDAR_CACHE: dict[tuple[str, str], Window] = {}
_CALENDAR_CACHE_MAX = 256


def _midnight(day: date, tz: ZoneInfo) -> float:
    # fold=0 on a non-existent local midnight resolves to the instant of the DST jump.
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def window_for(spec: WindowSpec, now: float) -> Window:
    """The window of ``spec`` that contains ``now`` (seconds since the epoch).

    Example:
        >>> window_for(WindowSpec(kind="rolling", seconds=3600), 7200.0).bucket_seconds
        60.0
    """
    if spec.kind == "call":
        return Window(key="call", start=now, end=now, expires_at=now)
    if spec.kind == "rolling":
        span = float(spec.seconds or 0)
        if span <= 0:
            raise ValueError("a rolling window needs a positive length")
        bucket = span / ROLLING_BUCKETS
        return Window(
            key=f"rolling:{_span_text(span)}s",
            start=now - span,
            end=now,
            expires_at=now + span + bucket,
            bucket_seconds=bucket,
            span_seconds=span,
        )
    cache_key = (spec.kind, spec.timezone)
    cached = _CALENDAR_CACHE.get(cache_key)
    if cached is not None and cached.start <= now < cached.end:
        return cached
    window = _calendar_window(spec, now)
    if len(_CALENDAR_CACHE) >= _CALENDAR_CACHE_MAX:
        _CALENDAR_CACHE.clear()
    _CALENDAR_CACHE[cache_key] = window
    return window


@functools.lru_cache(maxsize=256)
def _span_text(span: float) -> str:
    """A rolling window's span in its line key: exact, so two spans never share a line.

    Keys were once written with ``:g`` (six significant digits): ``1234567`` and ``1234568``
    both read ``1.23457e+06``. A span that ``:g`` writes exactly keeps that text, so lines in
    flight across an upgrade keep their spend (30 days is still ``2.592e+06``). Any other span
    is written in full (an integer, else the float's shortest repr): seven significant digits
    or more, which no ``:g`` key has, so it never lands on a line of the old format.

    Example:
        >>> _span_text(21600.0), _span_text(2592000.0), _span_text(1234567.0)
        ('21600', '2.592e+06', '1234567')
    """
    short = f"{span:g}"
    if float(short) == span:
        return short
    return str(int(span)) if span.is_integer() else repr(span)


def _calendar_window(spec: WindowSpec, now: float) -> Window:
    tz = ZoneInfo(spec.timezone)
    window = _window_of(spec.kind, datetime.fromtimestamp(now, tz).date(), tz)
    # Where clocks fall back across midnight (St. John's until 2011: 00:01 back to 23:01), the
    # local date runs backwards: an instant after the next day's midnight reads the day before.
    # Windows follow the instants, so that every process (whatever it computed before) charges
    # the same line and windows tile: such an instant belongs to the window it is in.
    for _ in range(2):
        if now >= window.end:
            window = _window_of(spec.kind, _local_date(window.end, tz), tz)
        elif now < window.start:
            window = _window_of(spec.kind, _local_date(window.start - 1, tz), tz)
    return window


def _local_date(moment: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(moment, tz).date()


def _window_of(kind: str, today: date, tz: ZoneInfo) -> Window:
    """The calendar window of ``kind`` that holds the local date ``today``."""
    if kind == "day":
        first, after, key = today, today + timedelta(days=1), f"day:{today.isoformat()}"
    elif kind == "week":
        first = today - timedelta(days=today.weekday())
        after = first + timedelta(days=7)
        iso = first.isocalendar()
        key = f"week:{iso[0]}-W{iso[1]:02d}"
    else:
        first = today.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        key = f"month:{first.year}-{first.month:02d}"
    start, end = _midnight(first, tz), _midnight(after, tz)
    return Window(key=key, start=start, end=end, expires_at=end + WINDOW_MARGIN_SECONDS)


def line_key(budget: str, scope: str, window_key: str) -> str:
    """The store key of one budget line.

    Example:
        >>> line_key("daily", "a/b", "day:2025-01-01")
        'daily/a%2Fb/day:2025-01-01'
    """
    return f"{_quoted(budget)}/{_quoted(scope)}/{window_key}"


def budget_prefix(budget: str) -> str:
    """The prefix every :func:`line_key` of ``budget`` starts with, for scanning a store.

    Example:
        >>> budget_prefix("team daily")
        'team%20daily/'
    """
    return f"{_quoted(budget)}/"


@functools.lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    # Budget names and scope values (user ids, teams) recur call after call.
    return quote(text, safe="")


def parse_line_key(key: str) -> tuple[str, str, str]:
    """``(budget, scope, window)`` back from :func:`line_key`."""
    budget, scope, window = key.split("/", 2)
    return unquote(budget), unquote(scope), window


def _scope_text(value: Any, per: str) -> str:
    if value is None or value is MISSING:
        return MISSING_SCOPE
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, sort_keys=True, default=str)
        except Exception as exc:  # a __str__ that raises, a circular structure, ...
            raise RequestError(
                f"budget scope {per!r}: a value of type {type(value).__name__} cannot be"
                f" written as text ({type(exc).__name__}: {exc})"
            ) from exc
    # Lone surrogates (from undecodable bytes) cannot be stored as UTF-8: escaped, the call
    # is charged under a scope every store can hold.
    return utf8_safe(text)


def scope_values(per: str | None, request: Request, *, route: str, model: str) -> tuple[str, ...]:
    """The scope values a call is charged under for a budget's ``per``.

    ``metadata.<path>`` is read through the same fact getters the router uses.

    Example:
        >>> req = Request(messages=[], metadata={"user": {"id": "u7"}}, tags=["a", "b", "a"])
        >>> scope_values("metadata.user.id", req, route="default", model="mini")
        ('u7',)
        >>> scope_values("tags", req, route="default", model="mini")
        ('a', 'b')
    """
    if per is None:
        return (GLOBAL_SCOPE,)
    if per == "tags":
        unique = tuple(dict.fromkeys(utf8_safe(str(t)) for t in request.tags))
        return unique or (MISSING_SCOPE,)
    if per == "route":
        return (route or MISSING_SCOPE,)
    if per == "model":
        return (model or MISSING_SCOPE,)
    return (_scope_text(fact_getter(per)(RequestFacts(request)), per),)
