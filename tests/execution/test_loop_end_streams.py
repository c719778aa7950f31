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
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from exec_support import open_shared_loop
from test_loop_end_settling import POLICY, SlowSettlingStore

import policyroute
from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.costs.sinks import CallableSink
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)
os.environ.setdefault("LOOP_END_KEY", "sk-test")


@pytest.fixture
def shared_loop_kept() -> Iterator[None]:
    # asyncio.run() leaves no current loop behind; the other tests here expect theirs.
    yield
    asyncio.set_event_loop(open_shared_loop())


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.parametrize(
    "end", ["collected", "dropped", "dropped, settling", "left", "consumer cancelled"]
)
@pytest.mark.usefixtures("shared_loop_kept")
def test_a_stream_abandoned_as_main_returns_is_settled(
    fp: FakeProvider, end: str, how: str
) -> None:
    fp.set_default("a", Reply(text="one two three four five six", chunk_delay=0.02))
    policy = load_policy_text(POLICY.format(base=fp.openai_base))
    store = SlowSettlingStore(how)
    receipts: list[Mapping[str, Any]] = []
    acct = PolicyAccounting(
        policy, guard=BudgetGuard(policy, store), sinks=[CallableSink(receipts.append)]
    )
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
            while not store.settling.is_set():
                await asyncio.sleep(0.001)

    asyncio.run(main())

    assert [(r["kind"], r["status"]) for r in receipts] == [
        ("attempt", "cancelled"),
        ("call", "cancelled"),
    ]
    (line,) = store.scan("day/", now=time.time())
    assert line.reserved == 0
    assert line.spent > 0  # the prompt and the text received are charged
