"""An ``astream`` through a chain (``llm | StrOutputParser()``) its caller stops early, just
before ``asyncio.run()`` ends, is settled and receipted by the time ``asyncio.run()`` returns.

Closing a chain's stream closes only its outer generator (see
test_abandoned_astream_chain.py); the model's own is closed when the garbage collector
finalizes it, by a task asyncio starts for it. Collected right before ``main`` returns, that
task and the settling it starts meet the loop's cancellation of every task left, and must
finish anyway. The store settles slowly (a pause on the loop, or a worker thread).

(Generators still alive when the loop ends are closed by ``shutdown_asyncgens`` all at once,
inner ones concurrently with the outer ones that close them: not covered here.)
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

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
os.environ.setdefault("LOOP_END_CHAIN_KEY", "sk-test")

POLICY = """
policyroute: 1
name: loop-end-chain
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{LOOP_END_CHAIN_KEY}}
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
    """Settles after a pause: on the event loop (``sleep``) or in a worker thread."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.settling = threading.Event()

    async def asettle(self, reservation_id: str, actual: Decimal, *, now: float) -> list[LineState]:
        self.settling.set()
        if self.how == "sleep":
            await asyncio.sleep(0.1)
            return self.settle(reservation_id, actual, now=now)

        def slowly() -> list[LineState]:
            time.sleep(0.1)
            return self.settle(reservation_id, actual, now=now)

        return await asyncio.to_thread(slowly)


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.parametrize("closed", [True, False], ids=["closed", "not closed"])
def test_a_chain_astream_abandoned_as_main_returns_is_settled(
    fp: FakeProvider, closed: bool, how: str
) -> None:
    fp.set_default("a", Reply(text="one two three four five six", chunk_delay=0.01))
    policy = load_policy_text(POLICY.format(base=fp.openai_base))
    store = SlowSettlingStore(how)
    receipts: list[Mapping[str, Any]] = []
    acct = PolicyAccounting(
        policy, guard=BudgetGuard(policy, store), sinks=[CallableSink(receipts.append)]
    )

    async def main() -> None:
        chain = ChatPolicyRoute(policy=policy, accounting=acct) | StrOutputParser()
        stream = chain.astream([HumanMessage("hello")])
        async for text in stream:
            assert text
            break
        if closed:
            await stream.aclose()  # type: ignore[attr-defined]
        del stream
        gc.collect()  # the model's generators are finalized now: closing them settles
        while not store.settling.is_set():
            await asyncio.sleep(0.001)
        # main returns while the store settles

    asyncio.run(main())

    assert [(r["kind"], r["status"]) for r in receipts] == [
        ("attempt", "cancelled"),
        ("call", "cancelled"),
    ]
    (line,) = store.scan("day/", now=time.time())
    assert line.reserved == 0
    assert line.spent > 0
