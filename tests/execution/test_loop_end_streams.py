"""A ``policyroute.acompletion`` stream abandoned as ``asyncio.run()`` ends is settled and
receipted all the same.

An async generator its caller drops is closed by a task of its own, which asyncio starts when
the garbage collector finalizes it; dropped just before ``main`` returns, that task (and the
settling it starts) meets the loop's cancellation of every task left. Closed or not, the
attempt is settled, its reservation given back, and both receipts written by the time
``asyncio.run()`` returns. The store settles slowly (a pause on the loop, or a worker thread).
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any, Literal

import pytest
from budgets.slow_stores import (
    CANCELLED,
    SlowSettlingStore,
    assert_settled,
    list_accounting,
    one_model_policy,
    until,
)

import policyroute
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.parametrize(
    "end", ["collected", "dropped", "dropped, settling", "left", "consumer cancelled"]
)
@pytest.mark.usefixtures("shared_loop_kept")
def test_a_stream_abandoned_as_main_returns_is_settled(
    fp: FakeProvider, end: str, how: Literal["sleep", "thread"]
) -> None:
    fp.set_default("a", Reply(text="one two three four five six", chunk_delay=0.02))
    policy = one_model_policy(fp.openai_base, "loop-end")
    store = SlowSettlingStore(how)
    acct, receipts = list_accounting(policy, store)
    consumers: list[asyncio.Future[None]] = []

    async def first_chunk() -> Any:
        stream = await policyroute.acompletion(
            policy=policy,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            accounting=acct,
        )
        async for _ in stream:
            break
        return stream

    async def drain() -> None:
        async for _ in await first_chunk():
            pass

    async def main() -> None:
        if end == "consumer cancelled":
            consumers.append(asyncio.ensure_future(drain()))
            while fp.attempts("a") == 0:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # between two chunks
            return
        stream = await first_chunk()
        if end == "left":
            return  # dropped with main's frame, once the loop stopped
        del stream
        if end == "collected":
            gc.collect()
        if end == "dropped, settling":  # main returns while the stream's closing settles
            await until(store.settling)

    asyncio.run(main())

    line = assert_settled(store, receipts, *CANCELLED)
    assert line.spent > 0  # the prompt and the text received are charged
