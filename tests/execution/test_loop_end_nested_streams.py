"""A ``policyroute.acompletion`` stream still open when ``asyncio.run()`` ends is settled with
the right receipts, whichever of its generators is closed first.

A stream kept referenced past the end of ``main`` (in a global, or returned) is closed by the
loop's ``shutdown_asyncgens``, which closes every async generator the loop tracks at once, in
no particular order. The stream is two generators: the call's, and inside it the attempt's,
which the call's closes in its ``finally``. Closing the attempt's while its owner does too
failed the second ``aclose()`` ("asynchronous generator is already running"): an ERROR in the
log, or the call finished as an ``error`` before its attempt was settled. The store settles
slowly (a pause on the loop, or a worker thread), so that one close is under way when the
other starts.
"""

from __future__ import annotations

import asyncio
import logging
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

import policyroute
from policyroute.accounting import PolicyAccounting
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)

KEPT: list[Any] = []
"""Streams kept alive past ``asyncio.run()``, as a program's global would."""


@pytest.fixture(autouse=True)
def _kept_cleared() -> Any:
    yield
    KEPT.clear()


async def first_chunk(acct: PolicyAccounting) -> Any:
    stream = await policyroute.acompletion(
        policy=acct.policy,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        accounting=acct,
    )
    async for _ in stream:
        break
    return stream


@pytest.mark.parametrize("how", ["sleep", "thread"])
@pytest.mark.parametrize("kept", ["global", "returned"])
@pytest.mark.usefixtures("shared_loop_kept")
def test_a_stream_kept_past_the_loop_end_is_settled_once_without_error(
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
@pytest.mark.parametrize("order", ["call first", "call last", "attempt first"])
@pytest.mark.usefixtures("shared_loop_kept")
def test_generators_closed_at_once_in_any_order_settle_the_call_once(
    fp: FakeProvider,
    caplog: pytest.LogCaptureFixture,
    order: str,
    how: Literal["sleep", "thread"],
) -> None:
    """The loop's sweep, forced: every generator it tracks (the call's, and those of the
    provider's HTTP stream) with the call's first or last; or the attempt's closed by someone
    else first, the call's while that close is under way."""
    fp.set_default("a", Reply(text="one two three four five six", chunk_delay=0.02))
    store = SlowSettlingStore(how, pause=0.1)
    acct, receipts = list_accounting(one_model_policy(fp.openai_base, "loop-end-nested"), store)
    results: list[BaseException | None] = []

    async def main() -> None:
        tracked = tracking()
        KEPT.append(await first_chunk(acct))
        swept = tracked()
        (call,) = [g for g in swept if g.ag_code.co_name == "stream_async"]
        if order == "attempt first":
            swept = [call.ag_frame.f_locals["inner"], call]
        else:
            names = [g.ag_code.co_name for g in swept]
            assert "_async_attempt" not in names  # the call's generator closes it, not the loop
            others = [g for g in swept if g is not call]
            swept = [call, *others] if order == "call first" else [*others, call]
        results.extend(await sweep(swept))

    with caplog.at_level(logging.ERROR):
        asyncio.run(main())

    assert [r for r in results if r is not None] == []
    assert errors_logged(caplog.records) == []
    line = assert_settled(store, receipts, *CANCELLED)  # the call's receipt comes last
    assert line.spent > 0
