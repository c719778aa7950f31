"""A ``ChatPolicyRoute.astream`` still open when ``asyncio.run()`` ends is settled with the
right receipts, whichever of its generators the loop closes first.

A stream kept referenced past the end of ``main`` (in a global, or returned) is closed by the
loop's ``shutdown_asyncgens``, which closes every async generator the loop tracks at once, in
no particular order. A LangChain stream nests several: ``astream`` around langchain-core's,
around ``_astream``, around the chunks' loop, around the executor's call and its attempt; each
closes the one inside it, and ``astream`` closes the chunks' loop too. Closing one while
another owner does failed the second ``aclose()`` ("asynchronous generator is already
running"): ERRORs in the log, and owners returning before the settle under way was over. The
store settles slowly (a pause on the loop, or a worker thread), so that one close is under way
when the others start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from budgets.slow_stores import (
    CANCELLED,
    SlowSettlingStore,
    assert_settled,
    errors_logged,
    list_accounting,
    one_model_policy,
    stream_kept_past_the_loop_end,
    sweep,
    tracking,
)
from langchain_core.messages import HumanMessage

from policyroute import ChatPolicyRoute
from policyroute.accounting import PolicyAccounting
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)

KEPT: list[Any] = []
"""Streams kept alive past ``asyncio.run()``, as a program's global would."""

# The stream's generators, outermost first (as they nest).
NESTING = [
    "FactsCarryingChatModel.astream",
    "BaseChatModel.astream",
    "ChatPolicyRoute._astream",
    "_astream_chunks",
    "astream_chunks",
    "stream_async",
    "_async_attempt",
]


@pytest.fixture(autouse=True)
def _kept_cleared() -> Iterator[None]:
    yield
    KEPT.clear()


async def first_chunk(acct: PolicyAccounting) -> Any:
    stream = ChatPolicyRoute(policy=acct.policy, accounting=acct).astream([HumanMessage("hi")])
    async for chunk in stream:
        assert chunk.content
        break
    return stream


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.parametrize("kept", ["global", "returned"])
def test_an_astream_kept_past_the_loop_end_is_settled_once_without_error(
    fp: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    kept: Literal["global", "returned"],
    how: Literal["sleep", "thread"],
) -> None:
    fp.set_default("a", Reply(text="one two three four five six", chunk_delay=0.02))

    with caplog.at_level(logging.ERROR):
        store, receipts = stream_kept_past_the_loop_end(
            fp.openai_base, first_chunk, kept=kept, how=how, keep=KEPT
        )

    assert errors_logged(caplog.records) == []
    line = assert_settled(store, receipts, *CANCELLED)
    assert line.spent > 0


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.parametrize("order", ["outermost first", "innermost first"])
def test_the_loop_sweep_in_either_order_settles_the_call_once(
    fp: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    order: str,
    how: Literal["sleep", "thread"],
) -> None:
    """The loop's sweep, forced: every generator of the stream it tracks, outermost or
    innermost first (then the provider's HTTP stream generators)."""
    fp.set_default("a", Reply(text="one two three four five six", chunk_delay=0.02))
    store = SlowSettlingStore(how, pause=0.1)
    acct, receipts = list_accounting(one_model_policy(fp.openai_base, "loop-end-nested"), store)
    results: list[BaseException | None] = []

    async def main() -> None:
        tracked = tracking()
        KEPT.append(await first_chunk(acct))
        swept = tracked()
        stream = sorted(
            (g for g in swept if g.__qualname__ in NESTING),
            key=lambda g: NESTING.index(g.__qualname__),
            reverse=order == "innermost first",
        )
        assert stream[0 if order == "outermost first" else -1] is KEPT[0]
        others = [g for g in swept if g not in stream]
        results.extend(await sweep([*stream, *others]))

    with caplog.at_level(logging.ERROR):
        asyncio.run(main())

    assert [r for r in results if r is not None] == []
    assert errors_logged(caplog.records) == []
    line = assert_settled(store, receipts, *CANCELLED)  # the call's receipt comes last
    assert line.spent > 0
