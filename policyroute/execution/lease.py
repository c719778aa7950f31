"""When a running stream should renew its budget reservation's lease.

A reservation whose lease runs out is taken for a crashed process's and charged its worst case
(:meth:`~policyroute.budgets.stores.base.BudgetStore.reclaim_expired`). A stream may
legitimately outlive the lease, so while chunks flow the executor renews it every third of the
lease: two renewals can be late or fail before the reservation is lost. The check is one clock
read per chunk; no timer or thread is involved, so a stream that stalls stops renewing (and its
idle timeout, not the lease, should end it).

Example:
    >>> ticks = iter([0.0, 5.0, 11.0, 12.0])
    >>> timer = LeaseTimer(30.0, clock=lambda: next(ticks))
    >>> timer.due(), timer.due(), timer.due()
    (False, True, False)
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["LeaseTimer"]


class LeaseTimer:
    """Says when a lease of ``lease_seconds`` taken now is a third of the way through."""

    __slots__ = ("_clock", "_every", "_next")

    def __init__(self, lease_seconds: float, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._every = lease_seconds / 3
        self._next = clock() + self._every

    def due(self) -> bool:
        """Whether to renew now; if so, the next renewal falls a third of a lease later."""
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._every
        return True
