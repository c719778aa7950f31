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
import time
from collections.abc import Sequence

import pytest
from budgets.slow_stores import (
    CANCELLED,
    SlowSettlingStore,
    assert_settled,
    list_accounting,
    one_model_policy,
)
from langchain_core.messages import HumanMessage
from langchain_core.output_parsers import StrOutputParser

from policyroute import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)


async def settled(receipts: Sequence[object], *, within: float) -> None:
    deadline = time.monotonic() + within
    while len(receipts) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
@pytest.mark.parametrize("collect", [False, True], ids=["dropped", "collected"])
async def test_an_abandoned_chain_astream_is_settled_while_the_loop_runs(
    fp: FakeProvider, collect: bool
) -> None:
    fp.set_default("a", Reply(text="one two three four five six", chunk_delay=0.01))
    policy = one_model_policy(fp.openai_base, "abandoned-chain")
    store = SlowSettlingStore(pause=0.05)
    acct, receipts = list_accounting(policy, store)
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
    line = assert_settled(store, receipts, *CANCELLED)
    assert line.spent > 0
