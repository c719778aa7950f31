"""What the Redis store sends its Lua scripts, and what it reads from their replies.

Amounts go as integer nano-dollars, every key under the store's hash-tagged prefix ``p``
(``{prefix}:``), laid out as :mod:`policyroute.budgets.stores._redis_lua` describes. No instant
goes: the scripts read the server's clock. A window's expiry goes as the time left until it by
the caller's clock (both instants are the caller's, so their difference holds whatever its
skew).

Example:
    >>> renew_args("{app}:", "r1", 300)
    ['r1', '300000', '{app}:']
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from policyroute.budgets.stores.base import (
    LineState,
    ReserveLine,
    ReserveResult,
    first_live_bucket,
    from_nano,
    reclaimed_crossings,
    threshold_spend,
    to_nano,
)

__all__ = [
    "line_state",
    "line_states",
    "renew_args",
    "reserve_call",
    "reserve_result",
    "settle_args",
    "text",
]


def text(value: Any) -> str:
    """A reply's string (redis-py returns bytes unless asked to decode)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _thresholds(fractions: Sequence[float], limit_nano: int) -> str:
    """``fraction:need`` pairs, need being the whole nano-dollars of spend that reach the
    fraction as the policy wrote it (:func:`~policyroute.budgets.stores.base.threshold_spend`,
    as :func:`~policyroute.budgets.stores.base.crossed_thresholds` compares): the script
    compares integers, not doubles.

    Example:
        >>> _thresholds([0.07, 0.5], 10_000_000)
        '0.07:700000,0.5:5000000'
    """
    return ",".join(f"{float(t)!r}:{math.ceil(threshold_spend(t, limit_nano))}" for t in fractions)


def reserve_call(
    p: str, lines: Sequence[ReserveLine], reservation_id: str, lease_seconds: float, now: float
) -> tuple[list[str], list[str]]:
    """The keys and arguments of the reserve script; ``now`` is the caller's clock, against
    which each line's ``expires_at`` (from the same clock) becomes a time to live."""
    keys = [p + "res"]
    args = [p, reservation_id, str(int(lease_seconds * 1000)), str(len(lines))]
    for line in lines:
        keys.append(p + "line:" + line.key)
        if line.bucket_seconds is not None:
            keys.append(p + "spend:" + line.key)
        ttl_ms = max(1, int((line.expires_at - now) * 1000))
        args += [
            line.key,
            str(to_nano(line.limit, up=False)),
            str(to_nano(line.amount)),
            str(ttl_ms),
            _num(line.bucket_seconds),
            _num(line.span_seconds),
            _thresholds(line.thresholds, to_nano(line.limit, up=False)),
        ]
    return keys, args


def reserve_result(lines: Sequence[ReserveLine], reply: Any) -> ReserveResult:
    """The reserve script's reply, read."""
    if int(reply[0]) == 1:
        reclaimed = reclaimed_crossings(line_states(reply[1] if len(reply) > 1 else []))
        return ReserveResult(ok=True, reclaimed=reclaimed)
    index = int(reply[1])
    line = lines[index]
    refused = LineState(
        line.key, from_nano(int(text(reply[2]))), from_nano(int(text(reply[3]))), line.limit
    )
    reclaimed = reclaimed_crossings(line_states(reply[4] if len(reply) > 4 else []))
    return ReserveResult(ok=False, refused=refused, refused_index=index, reclaimed=reclaimed)


def line_states(reply: Any) -> list[LineState]:
    """The lines a script settled or reclaimed: ``key, spent, reserved, limit, crossed`` each."""
    states = []
    for key, spent, reserved, limit, crossed in reply:
        states.append(
            LineState(
                text(key),
                from_nano(int(text(spent))),
                from_nano(int(text(reserved))),
                from_nano(int(text(limit))),
                tuple(float(t) for t in text(crossed).split(",") if t),
            )
        )
    return states


def line_state(key: str, reply: Any) -> LineState:
    """A line's state from the state script's reply: the server's time, the line hash's
    ``limit, spent, reserved, width, span`` and its rolling window's buckets (flattened), those
    counting at the server's time.

    Example:
        >>> line_state("r/*/rolling:60s", ["125.5", ["9", None, "2", "1.0", "60.0"],
        ...                                 ["64", "3", "65", "4"]]).spent
        Decimal('4E-9')
    """
    now = float(text(reply[0]))
    fields, flat = reply[1], reply[2] or []
    limit, spent, reserved, width, span = (text(f) if f is not None else "" for f in fields)
    if width and span:
        first = first_live_bucket(now, float(width), float(span))
        pairs = zip(flat[::2], flat[1::2], strict=True)
        total = sum(int(v) for b, v in pairs if int(text(b)) >= first)
    else:
        total = int(spent or 0)
    return LineState(
        key, from_nano(total), from_nano(int(reserved or 0)), from_nano(int(limit or 0))
    )


def settle_args(p: str, reservation_id: str, actual: Decimal) -> list[str]:
    """The settle script's arguments (a release settles 0)."""
    # The token tells a retry of this call (same token) from another settle of the id.
    token = os.urandom(8).hex()
    return [p, reservation_id, str(to_nano(actual)), token]


def renew_args(p: str, reservation_id: str, lease_seconds: float) -> list[str]:
    """The renew script's arguments."""
    return [reservation_id, str(int(lease_seconds * 1000)), p]
