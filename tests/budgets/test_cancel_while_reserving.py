"""A call cancelled while its reservation is being made does not leave the reservation
holding the budget until its lease runs out.

Stores may finish a reservation after the caller stopped waiting: SQLite reserves in a worker
thread when the file is busy (and checkpoints after some reservations), and a Redis script has
run on the server before its reply is read. Here a store makes the reservation and then
suspends before answering, the window in which such a cancellation lands.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator, Sequence

import pytest
from langchain_core.messages import HumanMessage

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.base import ReserveLine, ReserveResult
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.costs.sinks import CallableSink
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)
os.environ.setdefault("RESERVE_CANCEL_KEY", "sk-test")

POLICY = """
policyroute: 1
name: reserve-cancel
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{RESERVE_CANCEL_KEY}}
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


class LateAnsweringStore(MemoryStore):
    """Makes each reservation at once, then answers after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.reserved = asyncio.Event()

    async def areserve(
        self,
        lines: Sequence[ReserveLine],
        *,
        reservation_id: str,
        lease_seconds: float,
        now: float,
    ) -> ReserveResult:
        result = self.reserve(
            lines, reservation_id=reservation_id, lease_seconds=lease_seconds, now=now
        )
        self.reserved.set()
        await asyncio.sleep(self.delay)
        return result


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
    policy = load_policy_text(POLICY.format(base=fp.openai_base))
    store = LateAnsweringStore(delay=0.5)
    receipts: list[dict[str, object]] = []
    acct = PolicyAccounting(
        policy, guard=BudgetGuard(policy, store), sinks=[CallableSink(receipts.append)]
    )
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
    await store.reserved.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    (line,) = store.scan("day/", now=time.time())
    assert line.reserved == 0
    assert line.spent == 0
    assert fp.attempts("a") == 0  # nothing was sent
    assert [(r["kind"], r["status"]) for r in receipts] == [("call", "cancelled")]
