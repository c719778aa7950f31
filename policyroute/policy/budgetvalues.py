"""Budget values that read well but behave differently from what they say.

- PR122: a ``timezone`` must be a zone of IANA's database as the ``tzdata`` package ships it,
  the same on every host. Python's ``zoneinfo`` also opens files of the host's zone folder that
  are no zone of that database (``localtime``, ``posixrules``, ``posix/...``, ``right/...``,
  and on a case-insensitive file system ``europe/paris``): a policy naming one validates on
  one machine and fails, or counts its days from another midnight, on the next. ``Factory``
  is in the database but only as a placeholder for "no zone configured".
- PR137: budget stores count whole nano-dollars and round a limit down, so a ``limit_usd``
  under $0.000000001 becomes a limit of 0 that refuses every call.
- PR141: a rolling window is kept as buckets numbered ``now // (window / 60)``; the schema takes
  any window above zero, and one as short as ``1e-300`` numbers its buckets past a float's
  range, so every call it covers would fail. A window is at least 1ms, the language's smallest
  unit.

Example:
    >>> zone_problem("Europe/Paris") is None
    True
    >>> zone_problem("localtime")[0]
    "'localtime' names a file of this machine's zone folder, not an IANA time zone"
    >>> limit_rounds_to_zero(Decimal("0.0000000001")), limit_rounds_to_zero(Decimal("0.01"))
    (True, False)
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from policyroute.policy.build import parse_duration
from policyroute.policy.hints import did_you_mean

if TYPE_CHECKING:
    from policyroute.policy.checks import Checker

__all__ = ["MIN_WINDOW_SECONDS", "check_budget_values", "limit_rounds_to_zero", "zone_problem"]

# The stores' unit (policyroute.budgets.stores.base.NANO): limits are floored to it.
_NANO = Decimal("0.000000001")
# The shortest rolling window, the language's smallest unit (PR141).
MIN_WINDOW_SECONDS = 0.001
_PLACEHOLDERS = frozenset({"Factory"})
_IANA_HINT = "use an IANA name such as UTC or Europe/Paris"


@functools.cache
def _iana_zones() -> frozenset[str]:
    from importlib import resources

    return frozenset(resources.files("tzdata").joinpath("zones").read_text("utf-8").split())


def _loads(zone: str) -> bool:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(zone)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def zone_problem(zone: str) -> tuple[str, str] | None:
    """Why ``zone`` cannot be a budget's time zone, as a message and a hint; ``None`` if it can.

    Example:
        >>> zone_problem("europe/paris")[1]
        "zone names are case-sensitive: did you mean 'Europe/Paris'?"
    """
    zones = _iana_zones()
    if zone in _PLACEHOLDERS:
        return (
            f"{zone!r} is IANA's placeholder for a host whose zone is not configured",
            "name the zone the budget's days and months are counted in, such as UTC",
        )
    if zone in zones:
        return None
    same = [z for z in zones if z.lower() == zone.lower()]
    if same:
        hint = f"zone names are case-sensitive: did you mean {same[0]!r}?"
        return f"{zone!r} is not an IANA time zone", hint
    if _loads(zone):
        return (
            f"{zone!r} names a file of this machine's zone folder, not an IANA time zone",
            "it means another zone, or nothing, on other hosts; " + _IANA_HINT,
        )
    suggestion = did_you_mean(zone, sorted(zones))
    return f"unknown time zone {zone!r}", suggestion or _IANA_HINT


def limit_rounds_to_zero(limit: Decimal) -> bool:
    """Whether a positive ``limit`` is below the stores' unit, one nano-dollar."""
    return limit.is_finite() and Decimal(0) < limit < _NANO


def _money(c: Checker, value: Any, path: tuple[str | int, ...]) -> Decimal | None:
    raw = c.doc.raw_scalars.get(path)
    text = raw.replace("_", "") if raw is not None else value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return None  # the schema reports it


def _too_short(window: Any) -> bool:
    """Whether ``window`` is a rolling window above zero but shorter than 1ms."""
    if isinstance(window, bool) or not isinstance(window, (int, float, str)):
        return False
    try:
        seconds = parse_duration(window)
    except ValueError:
        return False  # call, day, week, month, or not a window (the schema reports it)
    return 0 < seconds < MIN_WINDOW_SECONDS


def check_budget_values(c: Checker) -> None:
    """PR122 time zones that are not IANA's; PR137 limits that round to zero; PR141 rolling
    windows shorter than 1ms."""
    for i, budget in enumerate(c.budgets):
        if not isinstance(budget, dict):
            continue
        zone = budget.get("timezone")
        if isinstance(zone, str) and zone:
            problem = zone_problem(zone)
            if problem is not None:
                c.emit("PR122", ("budgets", i, "timezone"), problem[0], hint=problem[1])
        path = ("budgets", i, "limit_usd")
        limit = _money(c, budget.get("limit_usd"), path)
        if limit is not None and limit_rounds_to_zero(limit):
            c.emit(
                "PR137",
                path,
                "limit_usd is below $0.000000001, the smallest amount budgets count, so it"
                " counts as 0 and refuses every call",
                hint="give a limit of at least 0.000000001; to keep calls off a route,"
                " route them elsewhere",
            )
        window = budget.get("window")
        if _too_short(window):
            c.emit(
                "PR141",
                ("budgets", i, "window"),
                f"rolling window {window!r} is shorter than 1ms, too short for budgets to count",
                hint="give a window of at least 1ms, or use window: call to limit each call",
            )
