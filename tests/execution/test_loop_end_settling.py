"""A call still settling when ``asyncio.run()`` ends is settled and receipted all the same;
one still reserving gives its reservation back.

``asyncio.run`` cancels every task left when its main coroutine returns, then runs them until
they finish. Settling a call runs as a task of its own (so that cancelling the call does not
stop it); that task must outlast the loop's cancellation too, or the reservation holds the
budget until its lease runs out and the attempt is missing from the receipts. Here the store
settles slowly (a pause on the loop, or a worker thread, like SQLite's or Redis's waits) and
``main`` returns while the call is in the middle of it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
from exec_support import open_shared_loop

import policyroute
from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.base import LineState, ReserveLine, ReserveResult
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.costs.sinks import CallableSink
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)
os.environ.setdefault("LOOP_END_KEY", "sk-test")

POLICY = """
policyroute: 1
name: loop-end
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{LOOP_END_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: default
    to: a
budgets:
  - name: day
    limit_usd: 10
    window: day
store: {{backend: memory, lease: 3600s}}
defaults: {{max_tokens: 16}}
"""

SETTLE_S = 0.2


class SlowSettlingStore(MemoryStore):
    """Settles after a pause: on the event loop (``sleep``) or in a worker thread."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.settling = threading.Event()

    async def asettle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        self.settling.set()
        if self.how == "sleep":
            await asyncio.sleep(SETTLE_S)
            return self.settle(reservation_id, actual, now=now)

        def slowly() -> list[LineState]:
            time.sleep(SETTLE_S)
            return self.settle(reservation_id, actual, now=now)

        return await asyncio.to_thread(slowly)


@pytest.fixture
def shared_loop_kept() -> Iterator[None]:
    # asyncio.run() leaves no current loop behind; the other tests here expect theirs.
    yield
    asyncio.set_event_loop(open_shared_loop())


def accounting(
    fp: FakeProvider, store: MemoryStore, sink: str
) -> tuple[PolicyAccounting, list[Mapping[str, Any]]]:
    policy = load_policy_text(POLICY.format(base=fp.openai_base))
    receipts: list[Mapping[str, Any]] = []
    acct = PolicyAccounting(
        policy,
        guard=BudgetGuard(policy, store),
        sinks=[CallableSink(receipts.append, blocking=sink == "thread")],
    )
    return acct, receipts


def assert_settled(
    store: MemoryStore, receipts: list[Mapping[str, Any]], attempt: str, call: str
) -> None:
    assert [(r["kind"], r["status"]) for r in receipts] == [("attempt", attempt), ("call", call)]
    (line,) = store.scan("day/", now=time.time())
    assert line.reserved == 0


@pytest.mark.parametrize("sink", ["inline", "thread"])
@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.usefixtures("shared_loop_kept")
def test_a_cancelled_call_settling_when_main_returns_is_settled(
    fp: FakeProvider, how: str, sink: str
) -> None:
    fp.set_default("a", Reply(text="hello there", delay=1))
    store = SlowSettlingStore(how)
    acct, receipts = accounting(fp, store, sink)

    async def main() -> None:
        call = asyncio.ensure_future(
            policyroute.acompletion(
                policy=acct.policy,
                messages=[{"role": "user", "content": "hi"}],
                accounting=acct,
            )
        )
        while fp.attempts("a") == 0:
            await asyncio.sleep(0.01)
        call.cancel()
        while not store.settling.is_set():
            await asyncio.sleep(0.005)
        # main returns while the cancelled call waits for its store

    asyncio.run(main())

    assert_settled(store, receipts, "cancelled", "cancelled")


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.usefixtures("shared_loop_kept")
def test_a_call_left_running_when_main_returns_is_settled(fp: FakeProvider, how: str) -> None:
    fp.set_default("a", Reply(text="hello there"))
    store = SlowSettlingStore(how)
    acct, receipts = accounting(fp, store, "inline")
    started: list[asyncio.Future[Any]] = []

    async def main() -> None:
        started.append(
            asyncio.ensure_future(
                policyroute.acompletion(
                    policy=acct.policy,
                    messages=[{"role": "user", "content": "hi"}],
                    accounting=acct,
                )
            )
        )
        while not store.settling.is_set():
            await asyncio.sleep(0.005)

    asyncio.run(main())

    # The attempt had its answer and is charged for it; the call's end says it was cancelled.
    assert_settled(store, receipts, "ok", "cancelled")
    (line,) = store.scan("day/", now=time.time())
    assert line.spent > 0


class SlowReservingStore(MemoryStore):
    """Makes each reservation at once, then answers after a pause (on the loop or a thread):
    the window in which a call can end with a reservation it never heard of."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.reserving = threading.Event()

    async def areserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        self.reserving.set()

        def slowly() -> ReserveResult:
            result = self.reserve(
                lines, reservation_id=reservation_id, lease_seconds=lease_seconds, now=now
            )
            time.sleep(SETTLE_S)
            return result

        if self.how == "thread":
            return await asyncio.to_thread(slowly)
        result = self.reserve(
            lines, reservation_id=reservation_id, lease_seconds=lease_seconds, now=now
        )
        await asyncio.sleep(SETTLE_S)
        return result


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.usefixtures("shared_loop_kept")
def test_a_call_reserving_when_main_returns_gives_its_reservation_back(
    fp: FakeProvider, how: str
) -> None:
    fp.set_default("a", Reply(text="hello there"))
    store = SlowReservingStore(how)
    acct, receipts = accounting(fp, store, "inline")
    started: list[asyncio.Future[Any]] = []

    async def main() -> None:
        started.append(
            asyncio.ensure_future(
                policyroute.acompletion(
                    policy=acct.policy,
                    messages=[{"role": "user", "content": "hi"}],
                    accounting=acct,
                )
            )
        )
        while not store.reserving.is_set():
            await asyncio.sleep(0.005)

    asyncio.run(main())

    assert fp.attempts("a") == 0  # nothing was sent
    assert [(r["kind"], r["status"]) for r in receipts] == [("call", "cancelled")]
    (line,) = store.scan("day/", now=time.time())
    assert line.reserved == 0
    assert line.spent == 0
