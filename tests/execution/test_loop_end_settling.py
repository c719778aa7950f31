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
import threading
from collections.abc import Mapping
from typing import Any, Literal

import pytest
from budgets.slow_stores import (
    CANCELLED,
    SlowReservingStore,
    SlowSettlingStore,
    assert_settled,
    list_accounting,
    one_model_policy,
    until,
)

import policyroute
from policyroute.accounting import PolicyAccounting
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)


def accounting(
    fp: FakeProvider, store: MemoryStore, sink: str
) -> tuple[PolicyAccounting, list[Mapping[str, Any]]]:
    return list_accounting(
        one_model_policy(fp.openai_base, "loop-end"), store, blocking=sink == "thread"
    )


def start_call(acct: PolicyAccounting) -> asyncio.Future[Any]:
    return asyncio.ensure_future(
        policyroute.acompletion(
            policy=acct.policy, messages=[{"role": "user", "content": "hi"}], accounting=acct
        )
    )


def run_until(acct: PolicyAccounting, event: threading.Event) -> None:
    """``asyncio.run()`` of a main that starts a call and returns, the call still running,
    once the store sets ``event``."""
    started: list[asyncio.Future[Any]] = []

    async def main() -> None:
        started.append(start_call(acct))
        await until(event)

    asyncio.run(main())


@pytest.mark.parametrize("sink", ["inline", "thread"])
@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.usefixtures("shared_loop_kept")
def test_a_cancelled_call_settling_when_main_returns_is_settled(
    fp: FakeProvider, how: Literal["sleep", "thread"], sink: str
) -> None:
    fp.set_default("a", Reply(text="hello there", delay=1))
    store = SlowSettlingStore(how)
    acct, receipts = accounting(fp, store, sink)

    async def main() -> None:
        call = start_call(acct)
        while fp.attempts("a") == 0:
            await asyncio.sleep(0.01)
        call.cancel()
        await until(store.settling)
        # main returns while the cancelled call waits for its store

    asyncio.run(main())

    assert_settled(store, receipts, *CANCELLED)


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.usefixtures("shared_loop_kept")
def test_a_call_left_running_when_main_returns_is_settled(
    fp: FakeProvider, how: Literal["sleep", "thread"]
) -> None:
    fp.set_default("a", Reply(text="hello there"))
    store = SlowSettlingStore(how)
    acct, receipts = accounting(fp, store, "inline")

    run_until(acct, store.settling)

    # The attempt had its answer and is charged for it; the call's end says it was cancelled.
    line = assert_settled(store, receipts, ("attempt", "ok"), ("call", "cancelled"))
    assert line.spent > 0


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.usefixtures("shared_loop_kept")
def test_a_call_reserving_when_main_returns_gives_its_reservation_back(
    fp: FakeProvider, how: Literal["sleep", "thread"]
) -> None:
    fp.set_default("a", Reply(text="hello there"))
    store = SlowReservingStore(how)
    acct, receipts = accounting(fp, store, "inline")

    run_until(acct, store.reserving)

    assert fp.attempts("a") == 0  # nothing was sent
    line = assert_settled(store, receipts, ("call", "cancelled"))
    assert line.spent == 0
