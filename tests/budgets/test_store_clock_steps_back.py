"""A host clock stepped back (an NTP correction, a VM restored from a snapshot) does not stop a
store from reclaiming the reservations whose lease ended by the new clock (memory and SQLite;
Redis ends leases by its server's clock, whatever a host's says)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from policyroute.budgets.stores.base import BudgetStore, ReserveLine


# Memory and SQLite time leases (and rolling windows) by the ``now`` they are given, which these
# tests move; Redis times them by its server's clock, tested in test_redis_server_clock.py.
@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


D = Decimal
NOW = 1_750_000_000.0


def _line(amount: str) -> ReserveLine:
    return ReserveLine(key="b/*/day:x", limit=D(1), amount=D(amount), expires_at=NOW + 86_400)


def test_leases_end_by_the_clock_after_it_stepped_back(store: BudgetStore) -> None:
    assert store.reserve([_line("0.1")], reservation_id="r0", lease_seconds=60, now=NOW)
    store.settle("r0", D("0.1"), now=NOW)
    back = NOW - 600  # the clock is set ten minutes back
    # A process dies holding this reservation; its lease ends 5 s later by the new clock.
    assert store.reserve([_line("0.8")], reservation_id="lost", lease_seconds=5, now=back).ok

    later = back + 60  # still before the time the store last saw
    other = ReserveLine(key="c/*/day:x", limit=D(1), amount=D("0.1"), expires_at=NOW + 86_400)
    assert store.reserve([other], reservation_id="r1", lease_seconds=60, now=later).ok

    # Reclaimed at its worst case, as the README says: its hold is spend now, held no more.
    state = store.state("b/*/day:x", now=later)
    assert (state.spent, state.reserved) == (D("0.9"), D(0))
