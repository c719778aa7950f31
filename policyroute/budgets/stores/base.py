"""The budget store interface and the exact money units stores keep.

A store holds, per budget line (``budget/scope/window`` key), the money spent and the money
reserved by calls in flight, and settles reservations atomically: :meth:`BudgetStore.reserve`
succeeds for all lines of a call or for none. Amounts cross this interface as
:class:`~decimal.Decimal` USD and are kept as integer nano-dollars (10⁻⁹ USD), never floats:
reservations and spend round up, limits round down, so rounding can only refuse, never overspend.

Rolling windows are kept as spend buckets: a line with ``bucket_seconds`` set records each
settlement in the bucket ``floor(now / bucket_seconds)``, and its spend at time ``now`` is the
sum of the buckets that overlap ``(now - span_seconds, now]``. The oldest overlapping bucket is
counted whole, so the sum over-counts by at most one bucket (1/60 of the window): the check is
conservative, a budget can refuse a little early but is never exceeded.

Example:
    >>> line = ReserveLine(key="daily/u1/day:2025-01-02", limit=Decimal("2"),
    ...                    amount=Decimal("0.01"), expires_at=1735900000.0)
    >>> to_nano(Decimal("0.0000000015"))
    2
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Protocol, runtime_checkable

from policyroute._money import EXACT

__all__ = [
    "NANO",
    "WINDOW_MARGIN_SECONDS",
    "BudgetStore",
    "LineState",
    "ReserveLine",
    "ReserveResult",
    "crossed_thresholds",
    "expired_by_key",
    "first_live_bucket",
    "from_nano",
    "reclaimed_crossings",
    "threshold_fraction",
    "threshold_need",
    "threshold_spend",
    "to_nano",
]

NANO = Decimal("1e9")
"""Nano-dollars per USD: the integer unit every store keeps amounts in."""
_NANO_PER_USD = 1_000_000_000
# Conversions run in EXACT, not the thread's context: see policyroute._money.

WINDOW_MARGIN_SECONDS = 3600.0
"""How long a window's state outlives the window (status reports, late settlements)."""


def to_nano(amount: Decimal, *, up: bool = True) -> int:
    """USD to integer nano-dollars, rounding up (charges) or down (limits)."""
    nano = EXACT.multiply(amount, NANO)
    return int(nano.to_integral_value(ROUND_CEILING if up else ROUND_FLOOR, EXACT))


def from_nano(nano: int) -> Decimal:
    """Integer nano-dollars back to USD, exactly, in plain notation.

    Example:
        >>> from_nano(20_000_000_000), from_nano(1_500_000)
        (Decimal('20'), Decimal('0.0015'))
    """
    # ``normalize`` strips trailing zeros into a positive exponent: $20 became ``2E+1`` in
    # status output, receipts' budget states and refusal messages. Whole dollars are built as
    # integers instead; any other amount has digits after the point, so normalizing keeps
    # a negative exponent, which ``str`` writes plainly.
    if nano % _NANO_PER_USD == 0:
        return Decimal(nano // _NANO_PER_USD)
    return EXACT.divide(Decimal(nano), NANO).normalize(EXACT)


def first_live_bucket(now: float, bucket_seconds: float, span_seconds: float) -> int:
    """The oldest bucket that overlaps the window ``(now - span, now]`` (counted whole)."""
    return math.floor((now - span_seconds) / bucket_seconds)


def threshold_fraction(fraction: float) -> Decimal:
    """A ``warn_at`` fraction as the decimal the policy wrote: ``0.07``, not the binary float
    just above it, so spend reaching the threshold exactly fires it.

    Example:
        >>> threshold_fraction(0.07)
        Decimal('0.07')
    """
    return Decimal(repr(float(fraction)))


def threshold_spend(fraction: float, limit_nano: int | Decimal) -> Decimal:
    """The spend that reaches the ``warn_at`` ``fraction`` of a limit, in the limit's unit
    (nano-dollars in stores, dollars for a per-call limit): exact, whatever the thread's
    decimal context.

    Example:
        >>> threshold_spend(0.07, 10_000_000)
        Decimal('700000.00')
    """
    return EXACT.multiply(threshold_fraction(fraction), limit_nano)


def threshold_need(fraction: float, limit_nano: int) -> int:
    """The whole nano-dollars of spend that reach the ``warn_at`` ``fraction`` of a limit: what
    a line's fired set records, so that a threshold is told apart by the spend it stands for.

    Example:
        >>> threshold_need(0.5, 1_000_000_000), threshold_need(0.07, 10_000_001)
        (500000000, 700001)
    """
    return math.ceil(threshold_spend(fraction, limit_nano))


def crossed_thresholds(
    thresholds: Sequence[float],
    fired: Sequence[float | int],
    spent_nano: int,
    limit_nano: int,
    charged_nano: int = 0,
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Which thresholds fire now, and the new fired set, after a settle charged
    ``charged_nano`` and brought the spend to ``spent_nano``.

    A threshold fires when spend reaches it and it has not fired in this window yet; it re-arms
    when spend falls back below it, which only happens in rolling windows as old buckets age out.
    The spend before this charge is what the window held just now: a threshold it is below had
    re-armed, even if no settle saw the spend that low (an idle span between two bursts).
    Stores call this inside their atomic settle so a threshold fires once across processes.

    The fired set holds the spend each fired threshold stands for
    (:func:`threshold_need`), not its fraction, and keeps those of other limits and ``warn_at``
    lists while the spend stays at them: while two versions of a policy with different limits
    (or two policies sharing the store) charge one line, each settle sees the line's limit and
    thresholds as the other last wrote them, and a set of this settle's own thresholds would
    forget the other's, which then fired again at every alternation. A new limit's thresholds
    fire once when spend reaches them, whether or not the same fraction of the old limit fired.
    (Fractions a store recorded before are no spend a threshold stands for: each threshold fires
    once more after the upgrade, then is recorded by its spend.)

    Example:
        >>> crossed_thresholds([0.5], [50], spent_nano=60, limit_nano=100, charged_nano=60)
        ((0.5,), (50,))
    """
    before = spent_nano - charged_nano
    # Fired and not re-armed since: the spend just before this charge still reaches it.
    kept = {int(n) for n in fired if n == int(n) and before >= n}
    newly: list[float] = []
    reached = set(kept)
    for t in sorted(thresholds):
        need = threshold_need(t, limit_nano)
        if limit_nano > 0 and spent_nano >= need:
            if need not in kept:
                newly.append(t)
            reached.add(need)
    return tuple(newly), tuple(sorted(reached))


def expired_by_key(
    reservations: Iterable[Iterable[tuple[str, int]]], prefix: str
) -> dict[str, int]:
    """Nano-dollars held per line key (those starting with ``prefix``) by ``reservations``,
    each given as its ``(key, amount)`` pairs; for :meth:`BudgetStore.scan`'s ``expired``.

    Example:
        >>> expired_by_key([[("a/x", 5), ("b/x", 5)], [("a/x", 2)]], "a/")
        {'a/x': 7}
    """
    held: dict[str, int] = {}
    for lines in reservations:
        for key, amount in lines:
            if key.startswith(prefix):
                held[key] = held.get(key, 0) + int(amount)
    return held


def reclaimed_crossings(states: Iterable[LineState]) -> tuple[LineState, ...]:
    """The settled ``states`` of reclaimed reservations that crossed a threshold, one per line.

    Several reservations reclaimed at once may cross thresholds of one line: the line is
    reported once, with the latest totals and every threshold crossed, in the order lines were
    first crossed.

    Example:
        >>> a = LineState("k", Decimal("0.5"), Decimal(0), Decimal(1), (0.5,))
        >>> b = LineState("k", Decimal("0.9"), Decimal(0), Decimal(1), (0.75,))
        >>> reclaimed_crossings([a, b])[0].crossed
        (0.5, 0.75)
    """
    merged: dict[str, LineState] = {}
    for state in states:
        if not state.crossed:
            continue
        prior = merged.get(state.key)
        crossed = tuple(sorted({*prior.crossed, *state.crossed})) if prior else state.crossed
        merged[state.key] = replace(state, crossed=crossed)
    return tuple(merged.values())


@dataclass(frozen=True, slots=True)
class ReserveLine:
    """One budget line a reservation is checked and held against.

    Attributes:
        key: ``budget/scope/window`` (see :func:`policyroute.budgets.windows.line_key`).
        limit: the budget's limit in USD.
        amount: the worst-case cost to reserve.
        expires_at: when the line's state may be dropped (the window's end plus a margin).
        bucket_seconds / span_seconds: set for rolling windows (see the module docstring).
        thresholds: ``warn_at`` fractions, recorded so settle can report crossings.
    """

    key: str
    limit: Decimal
    amount: Decimal
    expires_at: float
    bucket_seconds: float | None = None
    span_seconds: float | None = None
    thresholds: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class LineState:
    """A budget line as the store sees it; ``crossed`` is filled in by settle only.

    ``expired`` (filled in by :meth:`BudgetStore.scan` only) is the part of ``reserved`` held
    by reservations whose lease ran out: their process died or hung, and the next reservation
    made on the store reclaims them, recording that worst case as spend.
    """

    key: str
    spent: Decimal
    reserved: Decimal
    limit: Decimal
    crossed: tuple[float, ...] = ()
    expired: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        """Limit minus spend and open reservations, never negative."""
        return max(Decimal(0), self.limit - self.spent - self.reserved)


@dataclass(frozen=True, slots=True)
class ReserveResult:
    """The answer of :meth:`BudgetStore.reserve`: ``ok``, or the first line that refused.

    ``reclaimed`` lists the lines (any line of the store, not only this reservation's) whose
    ``warn_at`` thresholds were crossed when this reserve reclaimed expired reservations and
    charged their worst case; each state's ``crossed`` says which. The spend is recorded
    whether or not the reservation itself is refused, so a refusal carries them too: the caller
    is the only one who can report those crossings, which then count as fired for the window.
    """

    ok: bool
    refused: LineState | None = None
    refused_index: int | None = None
    reclaimed: tuple[LineState, ...] = ()


@runtime_checkable
class BudgetStore(Protocol):
    """Budget state shared by every process that enforces a policy.

    Every method is atomic with respect to every other caller of the same store (other
    threads, processes, or hosts, depending on the backend). Failures to reach the store raise
    :class:`~policyroute.errors.BudgetStoreError`. ``now`` is seconds since the epoch; it is
    passed in so tests (and guards with an injected clock) control time. A store shared by
    many hosts may time leases and rolling windows by its own clock instead, so that hosts
    whose clocks disagree agree on them: the Redis store uses the Redis server's.
    """

    def reserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        """Hold ``amount`` on every line if ``spent + reserved + amount <= limit`` for all."""

    def settle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        """Drop the reservation and record ``actual`` as spend on each of its lines.

        Idempotent: an unknown (already settled, released or reclaimed) id returns ``[]``.
        """

    def release(self, reservation_id: str, *, now: float | None = None) -> None:
        """Drop the reservation without spend (the call never reached a provider)."""

    def renew(self, reservation_id: str, lease_seconds: float, *, now: float) -> bool:
        """Extend an open reservation's lease to ``now + lease_seconds`` (never shortening it).

        For attempts that legitimately outlive the lease (long streams). Returns ``False``,
        changing nothing, when the reservation is unknown (settled, released or reclaimed) or
        its lease had already run out at ``now``: another process may be reclaiming it, so it
        is not revived.
        """

    def reclaim_expired(self, now: float) -> int:
        """Reclaim reservations whose lease ran out (a crashed process's); return how many.

        The process may have made the call before it died, so the reserved worst case is
        recorded as spend: reclaiming can only make a budget stricter, never overspend it.
        """

    def state(self, key: str, *, now: float) -> LineState:
        """One line's spend, reservations and last known limit (zeros if unknown)."""

    def scan(self, prefix: str, *, now: float) -> list[LineState]:
        """Every live line whose key starts with ``prefix``, sorted by key, with ``expired``
        filled in; it changes nothing (expired leases are left for a reservation to reclaim)."""

    def close(self) -> None:
        """Release connections."""

    async def areserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        """Async twin of :meth:`reserve`."""

    async def asettle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        """Async twin of :meth:`settle`."""

    async def arelease(self, reservation_id: str, *, now: float | None = None) -> None:
        """Async twin of :meth:`release`."""

    async def arenew(self, reservation_id: str, lease_seconds: float, *, now: float) -> bool:
        """Async twin of :meth:`renew`."""

    async def areclaim_expired(self, now: float) -> int:
        """Async twin of :meth:`reclaim_expired`."""

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
