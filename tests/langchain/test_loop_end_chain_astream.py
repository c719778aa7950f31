"""An ``astream`` through a chain (``llm | StrOutputParser()``) its caller stops early, just
before ``asyncio.run()`` ends, is settled and receipted by the time ``asyncio.run()`` returns.

Closing a chain's stream closes only its outer generator (see
test_abandoned_astream_chain.py); the model's own is closed when the garbage collector
finalizes it, by a task asyncio starts for it. Collected right before ``main`` returns, that
task and the settling it starts meet the loop's cancellation of every task left, and must
finish anyway. The store settles slowly (a pause on the loop, or a worker thread).

(Generators still alive when the loop ends are closed by ``shutdown_asyncgens`` all at once,
inner ones concurrently with the outer ones that close them: see
``test_loop_end_nested_astream.py``.)
"""

from __future__ import annotations

import asyncio
import gc
from typing import Literal

import pytest
from budgets.slow_stores import (
    CANCELLED,
    SlowSettlingStore,
    assert_settled,
    list_accounting,
    one_model_policy,
    until,
)
from langchain_core.messages import HumanMessage
from langchain_core.output_parsers import StrOutputParser

from policyroute import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.parametrize("closed", [True, False], ids=["closed", "not closed"])
def test_a_chain_astream_abandoned_as_main_returns_is_settled(
    fp: FakeProvider, closed: bool, how: Literal["sleep", "thread"]
) -> None:
    fp.set_default("a", Reply(text="one two three four five six", chunk_delay=0.01))
    policy = one_model_policy(fp.openai_base, "loop-end-chain")
    store = SlowSettlingStore(how, pause=0.1)
    acct, receipts = list_accounting(policy, store)

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
        await until(store.settling)
        # main returns while the store settles

    asyncio.run(main())

    line = assert_settled(store, receipts, *CANCELLED)
    assert line.spent > 0
