"""A call cancelled while its reservation is being made does not leave the reservation
holding the budget until its lease runs out.

Stores may finish a reservation after the caller stopped waiting: SQLite reserves in a worker
thread when the file is busy (and checkpoints after some reservations), and a Redis script has
run on the server before its reply is read. Here a store makes the reservation and then
suspends before answering, the window in which such a cancellation lands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from langchain_core.messages import HumanMessage

import policyroute
from budgets.slow_stores import (
    SlowReservingStore,
    assert_settled,
    list_accounting,
    one_model_policy,
    until,
)
from policyroute import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        provider.set_default("a", Reply(text="hi"))
        yield provider


@pytest.mark.asyncio
@pytest.mark.parametrize("api", ["ainvoke", "astream", "acompletion"])
async def test_cancelled_while_reserving_leaves_nothing_reserved(
    fp: FakeProvider, api: str
) -> None:
    policy = one_model_policy(fp.openai_base, "reserve-cancel")
    store = SlowReservingStore(pause=0.5)
    acct, receipts = list_accounting(policy, store)
    llm = ChatPolicyRoute(policy=policy, accounting=acct)

    async def drain() -> None:
        async for _ in llm.astream([HumanMessage("hello")]):
            pass

    calls = {
        "ainvoke": lambda: llm.ainvoke([HumanMessage("hello")]),
        "astream": drain,
        "acompletion": lambda: policyroute.acompletion(
            policy=policy, messages=[{"role": "user", "content": "hello"}], accounting=acct
        ),
    }
    task = asyncio.ensure_future(calls[api]())
    await until(store.reserving)  # reserved at once, the answer comes after the pause
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    line = assert_settled(store, receipts, ("call", "cancelled"))
    assert line.spent == 0
    assert fp.attempts("a") == 0  # nothing was sent
