"""A stream longer than the budget lease keeps its reservation and settles to its actual cost.

The guard's store clock and the executor's renewal clock are one fake clock that the consumer
moves forward one second per event: the stream lasts many times the 3 s lease, and at every
event the store is asked to reclaim expired leases, as another process would.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from pathlib import Path

import pytest
from billing_support import Billing, billing
from exec_support import arun, ask

from policyroute.execution.hooks import Admission, AttemptInfo
from policyroute.execution.lease import LeaseTimer
from policyroute.execution.result import StreamDone, StreamEvent
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(20)
TEXT = "one two three four five six seven eight nine ten eleven twelve"
LEASE = 3.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def long_stream(fp: FakeProvider, tmp_path: Path) -> tuple[Billing, Clock]:
    fp.script("a", Reply(text=TEXT))
    clock = Clock()
    return billing(fp, tmp_path, lease=f"{LEASE:g}s", clock=clock), clock


def test_lease_timer_fires_every_third_of_the_lease() -> None:
    clock = Clock()
    start = clock.now
    timer = LeaseTimer(3.0, clock)
    due = []
    for step in (0.5, 0.6, 0.1, 1.2, 0.5, 1.0):
        clock.now += step
        due.append((round(clock.now - start, 1), timer.due()))
    assert due == [(0.5, False), (1.1, True), (1.2, False), (2.4, True), (2.9, False), (3.9, True)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_stream_outliving_the_lease_is_renewed_and_settled_to_its_cost(
    fp: FakeProvider, tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    bill, clock = long_stream(fp, tmp_path)
    started = clock.now
    reclaimed: list[int] = []
    events: list[StreamEvent] = []

    def step(event: StreamEvent) -> None:
        events.append(event)
        clock.now += 1.0
        reclaimed.append(bill.store.reclaim_expired(clock.now))

    async def consume_async() -> None:
        async for event in bill.executor.astream(ask()):
            step(event)

    with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
        if mode == "sync":
            for event in bill.executor.stream(ask()):
                step(event)
        else:
            arun(consume_async())

    assert clock.now - started > 3 * LEASE
    assert isinstance(events[-1], StreamDone)
    assert set(reclaimed) == {0}
    (receipt,) = bill.receipts("attempt")
    assert receipt["status"] == "ok"
    cost = Decimal(receipt["cost"])
    assert cost > 0
    assert Decimal(receipt["estimated_cost"]) > cost  # so a reclaim would have shown
    state = bill.budget(clock.now)
    assert state.spent == events[-1].result.cost
    assert state.spent.quantize(Decimal("1e-6")) == cost
    assert state.reserved == 0
    assert not [r for r in caplog.records if "expired before it was renewed" in r.getMessage()]


def test_a_lease_lost_before_renewal_is_logged_and_charged_its_worst_case(
    fp: FakeProvider, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bill, clock = long_stream(fp, tmp_path)
    events: list[StreamEvent] = []
    with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
        for event in bill.executor.stream(ask()):
            events.append(event)
            if len(events) == 2:
                # The consumer holds the stream past the whole lease: no chunk, no renewal.
                clock.now += LEASE + 1
                assert bill.store.reclaim_expired(clock.now) == 1
    assert isinstance(events[-1], StreamDone)
    assert any("expired before it was renewed" in r.getMessage() for r in caplog.records)
    (receipt,) = bill.receipts("attempt")
    state = bill.budget(clock.now)
    assert state.spent == Decimal(receipt["estimated_cost"])  # the worst case, not the cost
    assert state.reserved == 0


class FailingRenewal:
    """An accounting whose renewals fail: the stream must go on regardless."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.renewals = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def renew(self, attempt: AttemptInfo, admission: Admission) -> None:
        self.renewals += 1
        raise RuntimeError("store down")


def test_a_failing_renewal_does_not_break_the_stream(
    fp: FakeProvider, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bill, clock = long_stream(fp, tmp_path)
    accounting = FailingRenewal(bill.accounting)
    bill.executor = type(bill.executor)(
        bill.executor.policy,
        accounting=accounting,
        clock=clock,  # type: ignore[arg-type]
    )
    events: list[StreamEvent] = []
    with caplog.at_level(logging.ERROR, logger="policyroute.execution"):
        for event in bill.executor.stream(ask()):
            events.append(event)
            clock.now += 1.0
    assert isinstance(events[-1], StreamDone)
    assert accounting.renewals > 0
    assert any("renewing the budget lease" in r.getMessage() for r in caplog.records)
