"""An ``astream`` its caller stops early is settled and receipted before ``aclose()`` returns.

langchain-core's ``astream`` does not close the model's inner stream when its own caller stops;
left to the garbage collector, the settling would run later in a task of its own (which the
loop's end may cancel: the reservation then holds until its lease, the receipt is never
written). Here settling takes a while (a store that answers after a pause, like Redis), so a
late settle would show.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from langchain_core.messages import HumanMessage

from policyroute import ChatPolicyRoute
from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.base import LineState
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.costs.sinks import CallableSink
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)
os.environ.setdefault("ABANDONED_STREAM_KEY", "sk-test")

POLICY = """
policyroute: 1
name: abandoned
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{ABANDONED_STREAM_KEY}}
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


class SlowSettlingStore(MemoryStore):
    async def asettle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        await asyncio.sleep(0.05)
        return self.settle(reservation_id, actual, now=now)


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        provider.set_default("a", Reply(text="one two three four five six", chunk_delay=0.01))
        yield provider


@pytest.mark.asyncio
async def test_an_abandoned_astream_is_settled_when_aclose_returns(fp: FakeProvider) -> None:
    policy = load_policy_text(POLICY.format(base=fp.openai_base))
    store = SlowSettlingStore()
    receipts: list[dict[str, object]] = []
    acct = PolicyAccounting(
        policy, guard=BudgetGuard(policy, store), sinks=[CallableSink(receipts.append)]
    )
    llm = ChatPolicyRoute(policy=policy, accounting=acct)
    stream = llm.astream([HumanMessage("hello")])
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]

    assert [(r["kind"], r["status"]) for r in receipts] == [
        ("attempt", "cancelled"),
        ("call", "cancelled"),
    ]
    (line,) = store.scan("day/", now=time.time())
    assert line.reserved == 0
    assert line.spent > 0  # the prompt and what was received are billed
