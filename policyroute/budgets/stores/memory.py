"""An in-process budget store: a dict behind a lock. Right for one process and for tests.

Example:
    >>> store = MemoryStore()
    >>> line = ReserveLine(key="b/*/day:2025-01-02", limit=Decimal("1"),
    ...                    amount=Decimal("0.4"), expires_at=2e9)
    >>> store.reserve([line], reservation_id="r1", lease_seconds=60, now=0).ok
    True
    >>> store.settle("r1", Decimal("0.1"), now=1)[0].spent
    Decimal('0.1')
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from policyroute.budgets.stores.base import (
    LineState,
    ReserveLine,
    ReserveResult,
    crossed_thresholds,
    expired_by_key,
    first_live_bucket,
    from_nano,
    reclaimed_crossings,
    to_nano,
)

__all__ = ["MemoryStore"]

_SWEEP_EVERY = 1.0


@dataclass(slots=True)
class _Line:
    limit: int
    expires_at: float
    bucket_seconds: float | None
    span_seconds: float | None
    thresholds: tuple[float, ...]
    reserved: int = 0
    fired: tuple[int, ...] = ()  # the spend of each fired threshold (see crossed_thresholds)
    buckets: dict[int, int] = field(default_factory=dict)

    def spent(self, now: float) -> int:
        if self.bucket_seconds is None or self.span_seconds is None:
            return self.buckets.get(0, 0)
        first = first_live_bucket(now, self.bucket_seconds, self.span_seconds)
        for old in [b for b in self.buckets if b < first]:
            del self.buckets[old]
        return sum(self.buckets.values())

    def bucket(self, now: float) -> int:
        return 0 if self.bucket_seconds is None else int(now // self.bucket_seconds)

    def live(self, now: float) -> bool:
        # A line past its window still holds the reservations made on it (a long call).
        return self.expires_at > now or self.reserved > 0

    def charged(self, now: float) -> None:
        """Keep a rolling line for as long as spend recorded at ``now`` counts."""
        if self.bucket_seconds is not None and self.span_seconds is not None:
            keep = now + self.span_seconds + self.bucket_seconds
            self.expires_at = max(self.expires_at, keep)


@dataclass(slots=True)
class _Reservation:
    expires_at: float
    lines: list[tuple[str, int]]


class MemoryStore:
    """Budget state in this process's memory; lost when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[str, _Line] = {}
        self._reservations: dict[str, _Reservation] = {}
        self._last_sweep = float("-inf")

    # ------------------------------------------------------------------ sync

    def reserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        """See :meth:`BudgetStore.reserve`."""
        with self._lock:
            settled: list[LineState] = []
            if not 0 <= now - self._last_sweep < _SWEEP_EVERY:
                # Sweeping walks every line and reservation: once a second is plenty. A clock
                # stepped back sweeps at once too, or leases ending by the new clock would wait
                # until it caught up with the last sweep.
                self._last_sweep = now
                self._reclaim(now, settled)
                self._drop_expired_lines(now)
            reclaimed = reclaimed_crossings(settled)
            amounts = [to_nano(line.amount) for line in lines]
            for index, (line, amount) in enumerate(zip(lines, amounts, strict=True)):
                state = self._line(line, now)
                spent = state.spent(now)
                if spent + state.reserved + amount > state.limit:
                    refused = LineState(
                        line.key, from_nano(spent), from_nano(state.reserved), line.limit
                    )
                    return ReserveResult(
                        ok=False, refused=refused, refused_index=index, reclaimed=reclaimed
                    )
            for line, amount in zip(lines, amounts, strict=True):
                self._lines[line.key].reserved += amount
            self._reservations[reservation_id] = _Reservation(
                expires_at=now + lease_seconds,
                lines=[(line.key, amount) for line, amount in zip(lines, amounts, strict=True)],
            )
            return ReserveResult(ok=True, reclaimed=reclaimed)

    def settle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        """See :meth:`BudgetStore.settle`."""
        with self._lock:
            return self._settle(reservation_id, to_nano(actual), now)

    def release(self, reservation_id: str, *, now: float | None = None) -> None:
        """See :meth:`BudgetStore.release`."""
        with self._lock:
            self._settle(reservation_id, 0, time.time() if now is None else now)

    def renew(self, reservation_id: str, lease_seconds: float, *, now: float) -> bool:
        """See :meth:`BudgetStore.renew`."""
        with self._lock:
            reservation = self._reservations.get(reservation_id)
            if reservation is None or reservation.expires_at <= now:
                return False
            reservation.expires_at = max(reservation.expires_at, now + lease_seconds)
            return True

    def reclaim_expired(self, now: float) -> int:
        """See :meth:`BudgetStore.reclaim_expired`."""
        with self._lock:
            return self._reclaim(now)

    def state(self, key: str, *, now: float) -> LineState:
        """See :meth:`BudgetStore.state`."""
        with self._lock:
            line = self._lines.get(key)
            if line is None or not line.live(now):
                return LineState(key, Decimal(0), Decimal(0), Decimal(0))
            return self._state(key, line, now)

    def scan(self, prefix: str, *, now: float) -> list[LineState]:
        """See :meth:`BudgetStore.scan`."""
        with self._lock:
            expired = expired_by_key(
                (r.lines for r in self._reservations.values() if r.expires_at <= now), prefix
            )
            return [
                replace(self._state(key, line, now), expired=from_nano(expired.get(key, 0)))
                for key, line in sorted(self._lines.items())
                if key.startswith(prefix) and line.live(now)
            ]

    def close(self) -> None:
        """Nothing to release."""

    # ------------------------------------------------------------------ async
    # Every operation is a few dict updates under a lock held for microseconds, so the async
    # twins run inline rather than paying for a thread hop.

    async def areserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        """Async twin of :meth:`reserve`."""
        return self.reserve(
            lines, reservation_id=reservation_id, lease_seconds=lease_seconds, now=now
        )

    async def asettle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        """Async twin of :meth:`settle`."""
        return self.settle(reservation_id, actual, now=now)

    async def arelease(self, reservation_id: str, *, now: float | None = None) -> None:
        """Async twin of :meth:`release`."""
        self.release(reservation_id, now=now)

    async def arenew(self, reservation_id: str, lease_seconds: float, *, now: float) -> bool:
        """Async twin of :meth:`renew`."""
        return self.renew(reservation_id, lease_seconds, now=now)

    async def areclaim_expired(self, now: float) -> int:
        """Async twin of :meth:`reclaim_expired`."""
        return self.reclaim_expired(now)

    async def aclose(self) -> None:
        """Nothing to release."""

    # ------------------------------------------------------------------ internals

    def _line(self, spec: ReserveLine, now: float) -> _Line:
        line = self._lines.get(spec.key)
        # A line past its expiry that nothing holds is gone even before the sweep drops it:
        # its key met again (a calendar date after the policy's time zone changed) starts afresh.
        if line is None or (line.expires_at <= now and not line.reserved):
            line = _Line(
                limit=to_nano(spec.limit, up=False),
                expires_at=spec.expires_at,
                bucket_seconds=spec.bucket_seconds,
                span_seconds=spec.span_seconds,
                thresholds=spec.thresholds,
            )
            self._lines[spec.key] = line
        else:
            # The policy may have been reloaded with a new limit: the latest one applies.
            line.limit = to_nano(spec.limit, up=False)
            line.thresholds = spec.thresholds
            line.expires_at = max(line.expires_at, spec.expires_at)
        return line

    def _state(
        self, key: str, line: _Line, now: float, crossed: tuple[float, ...] = ()
    ) -> LineState:
        return LineState(
            key,
            from_nano(line.spent(now)),
            from_nano(line.reserved),
            from_nano(line.limit),
            crossed,
        )

    def _settle(self, reservation_id: str, actual: int, now: float) -> list[LineState]:
        reservation = self._reservations.pop(reservation_id, None)
        if reservation is None:
            return []
        states = []
        for key, amount in reservation.lines:
            line = self._lines.get(key)
            if line is None:
                continue
            line.reserved -= amount
            if actual:
                bucket = line.bucket(now)
                line.buckets[bucket] = line.buckets.get(bucket, 0) + actual
                # Spend settled (or reclaimed) late in the line's life counts a whole span from
                # now: the expiry set when the reservation was made would drop it early.
                line.charged(now)
            spent = line.spent(now)
            crossed, line.fired = crossed_thresholds(
                line.thresholds, line.fired, spent, line.limit, actual
            )
            states.append(self._state(key, line, now, crossed))
        return states

    def _reclaim(self, now: float, settled: list[LineState] | None = None) -> int:
        """Charge expired reservations their worst case; their line states go to ``settled``."""
        expired = [rid for rid, r in self._reservations.items() if r.expires_at <= now]
        for rid in expired:
            reservation = self._reservations[rid]
            # Charged at its worst case: the dead process may have made the call.
            worst = max((amount for _, amount in reservation.lines), default=0)
            states = self._settle(rid, worst, now)
            if settled is not None:
                settled.extend(states)
        return len(expired)

    def _drop_expired_lines(self, now: float) -> None:
        dead = [
            k for k, line in self._lines.items() if line.expires_at <= now and not line.reserved
        ]
        for key in dead:
            del self._lines[key]
