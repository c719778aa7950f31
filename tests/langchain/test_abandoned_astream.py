"""An ``astream`` its caller stops early is settled and receipted before ``aclose()`` returns.

langchain-core's ``astream`` does not close the model's inner stream when its own caller stops;
left to the garbage collector, the settling would run later in a task of its own (which the
loop's end may cancel: the reservation then holds until its lease, the receipt is never
written). Here settling takes a while (a store that answers after a pause, like Redis), so a
late settle would show.
"""

from __future__ import annotations

import pytest
from budgets.slow_stores import (
    CANCELLED,
    SlowSettlingStore,
    assert_settled,
    list_accounting,
    one_model_policy,
)
from langchain_core.messages import HumanMessage

from policyroute import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)


@pytest.mark.asyncio
async def test_an_abandoned_astream_is_settled_when_aclose_returns(fp: FakeProvider) -> None:
    fp.set_default("a", Reply(text="one two three four five six", chunk_delay=0.01))
    policy = one_model_policy(fp.openai_base, "abandoned")
    store = SlowSettlingStore(pause=0.05)
    acct, receipts = list_accounting(policy, store)
    llm = ChatPolicyRoute(policy=policy, accounting=acct)
    stream = llm.astream([HumanMessage("hello")])
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]

    line = assert_settled(store, receipts, *CANCELLED)
    assert line.spent > 0  # the prompt and what was received are billed
