"""An ``astream`` through a chain (``llm | StrOutputParser()``) its caller stops early is settled
and receipted once langchain-core's generators are finalized, while the loop runs.

Unlike a model's own ``astream`` (see test_abandoned_astream.py), nothing of the model runs when
the caller closes a chain's stream: ``RunnableSequence.astream`` is ``async for chunk in
self.atransform(...): yield chunk``, and so are the layers below it down to the model's
``astream``; ``async for`` does not close what it iterates, so the caller's ``aclose()`` stops at
the outer generator. The inner ones are closed when the garbage collector finalizes them
(asyncio's finalizer hook schedules each ``aclose()`` as a task of its own), which these tests
hold to: the call is settled and receipted then, as long as the loop runs.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.output_parsers import StrOutputParser

from policyroute import ChatPolicyRoute
from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.base import LineState
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.costs.sinks import CallableSink
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)
os.environ.setdefault("ABANDONED_CHAIN_KEY", "sk-test")

POLICY = """
policyroute: 1
name: abandoned-chain
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{ABANDONED_CHAIN_KEY}}
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


async def settled(receipts: list[dict[str, object]], *, within: float) -> None:
    deadline = time.monotonic() + within
    while len(receipts) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
@pytest.mark.parametrize("collect", [False, True], ids=["dropped", "collected"])
async def test_an_abandoned_chain_astream_is_settled_while_the_loop_runs(
    fp: FakeProvider, collect: bool
) -> None:
    policy = load_policy_text(POLICY.format(base=fp.openai_base))
    store = SlowSettlingStore()
    receipts: list[dict[str, object]] = []
    acct = PolicyAccounting(
        policy, guard=BudgetGuard(policy, store), sinks=[CallableSink(receipts.append)]
    )
    chain = ChatPolicyRoute(policy=policy, accounting=acct) | StrOutputParser()
    stream = chain.astream([HumanMessage("hello")])
    async for text in stream:
        assert text
        break
    await stream.aclose()  # type: ignore[attr-defined]
    del stream
    if collect:  # what a cycle among the generators waits for
        gc.collect()

    await settled(receipts, within=5)
    assert [(r["kind"], r["status"]) for r in receipts] == [
        ("attempt", "cancelled"),
        ("call", "cancelled"),
    ]
    (line,) = store.scan("day/", now=time.time())
    assert line.reserved == 0
    assert line.spent > 0
