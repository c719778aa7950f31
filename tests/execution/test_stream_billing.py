"""A stream cut short after content arrived is billed for the prompt and the output received.

Through the real accounting: the attempt receipt, the budget store's spend and the absence of
any leftover reservation say the same thing.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest
from billing_support import billing, priced
from exec_support import arun, ask

from policyroute.errors import StreamInterruptedError
from policyroute.execution.result import StreamDelta, StreamEvent
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(20)
TEXT = "one two three four five six seven eight"


def text_of(events: list[StreamEvent]) -> str:
    return "".join(
        e.chunk.choices[0].delta.content or ""
        for e in events
        if isinstance(e, StreamDelta) and e.chunk.choices
    )


def assert_billed_for(
    receipt: dict[str, object], status: str, prompt: list[dict[str, str]], received: str
) -> Decimal:
    tokens_in, tokens_out, cost = priced(prompt, received)
    assert receipt["status"] == status
    assert receipt["provider_billed"] is True
    assert (receipt["input_tokens"], receipt["output_tokens"]) == (tokens_in, tokens_out)
    assert tokens_out > 0
    assert Decimal(str(receipt["cost"])) == cost.quantize(Decimal("1e-6"))
    return cost


def test_sync_stream_abandoned_after_two_chunks_is_billed(fp: FakeProvider, tmp_path: Path):
    fp.script("a", Reply(text=TEXT, chunk_delay=0.02))
    bill = billing(fp, tmp_path)
    request = ask()
    stream = bill.executor.stream(request)
    events: list[StreamEvent] = []
    for event in stream:
        events.append(event)
        if len(events) == 2:
            break
    stream.close()  # type: ignore[attr-defined]

    (receipt,) = bill.receipts("attempt")
    cost = assert_billed_for(receipt, "cancelled", request.messages, text_of(events))
    (call,) = bill.receipts("call")
    assert call["status"] == "cancelled"
    state = bill.budget(time.time())
    assert state.spent == cost
    assert state.reserved == 0


def test_async_stream_cancelled_after_two_chunks_is_billed(fp: FakeProvider, tmp_path: Path):
    fp.script("a", Reply(text=TEXT, chunk_delay=0.2))
    bill = billing(fp, tmp_path)
    request = ask()
    events: list[StreamEvent] = []

    async def main() -> None:
        two = asyncio.Event()

        async def consume() -> None:
            async for event in bill.executor.astream(request):
                events.append(event)
                if len(events) == 2:
                    two.set()

        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(two.wait(), 10)
        await asyncio.sleep(0.02)  # the consumer is now waiting for the third chunk
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(main())
    assert len(events) == 2
    (receipt,) = bill.receipts("attempt")
    cost = assert_billed_for(receipt, "cancelled", request.messages, text_of(events))
    state = bill.budget(time.time())
    assert state.spent == cost
    assert state.reserved == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_stream_cut_after_content_is_billed_for_the_text_received(
    fp: FakeProvider, tmp_path: Path, mode: str
):
    fp.script("a", Fault.stream_cut(after=3, reply=Reply(text=TEXT)))
    bill = billing(fp, tmp_path)
    request = ask()

    def consume() -> None:
        if mode == "sync":
            list(bill.executor.stream(request))
        else:
            arun(_drain(bill.executor.astream(request)))

    with pytest.raises(StreamInterruptedError) as info:
        consume()
    (receipt,) = bill.receipts("attempt")
    cost = assert_billed_for(receipt, "interrupted", request.messages, info.value.partial_text)
    state = bill.budget(time.time())
    assert (state.spent, state.reserved) == (cost, 0)
    # The caller is told the tokens the receipt charged, counted locally.
    assert info.value.partial_usage == {
        "input_tokens": receipt["input_tokens"],
        "output_tokens": receipt["output_tokens"],
    }
    assert info.value.usage_estimated is True


def test_stream_abandoned_before_any_content_is_billed_for_the_prompt_only(
    fp: FakeProvider, tmp_path: Path
):
    # Only the role chunk arrived: nothing reached the caller, yet the provider read the prompt.
    fp.script("a", Reply(text=TEXT, delay=0.0, chunk_delay=0.5))
    bill = billing(fp, tmp_path, lease="300s")
    request = ask()

    async def main() -> None:
        task = asyncio.ensure_future(_drain(bill.executor.astream(request)))
        await asyncio.sleep(0.3)  # the role chunk is in, the first word is not
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(main())
    (receipt,) = bill.receipts("attempt")
    tokens_in, _, cost = priced(request.messages, "")
    assert receipt["status"] == "cancelled"
    assert (receipt["input_tokens"], receipt["output_tokens"]) == (tokens_in, 0)
    assert bill.budget(time.time()).spent == cost


async def _drain(stream: object) -> None:
    async for _ in stream:  # type: ignore[attr-defined]
        pass
