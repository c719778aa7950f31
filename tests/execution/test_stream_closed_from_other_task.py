"""An async stream closed from another task than the one reading it.

``acompletion(stream=True)`` read in one task and closed with ``aclose()`` from another (a
"stop" message on a websocket, a supervisor): the reading task's iteration ends without an
error and without being left cancelled, nothing more reaches it, and the attempt is settled
and its receipts written, once each, before ``aclose()`` returns. A cancellation of the
reading task by someone else at the same time still reaches it.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from exec_support import arun, receipts_in

from policyroute import api
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hi"}]
WORDS = " ".join(f"w{i}" for i in range(40))


class Reader:
    """Reads a stream in a task of its own; says how the reading ended and whether the task
    could go on awaiting afterwards."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.chunks: list[Any] = []
        self.first = asyncio.Event()
        self.went_on = False
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for chunk in self.stream:
            self.chunks.append(chunk)
            self.first.set()
        await asyncio.sleep(0)  # a task left cancelled would fail here
        self.went_on = True


@pytest.mark.parametrize("fault", ["slow", "stalled"])
def test_a_stream_closed_from_another_task_ends_its_readers_loop_and_settles_before_aclose_returns(
    fp: FakeProvider, metered_policy: Path, fault: str
) -> None:
    slow = Reply(text=WORDS, chunk_delay=0.05)
    fp.script("a", slow if fault == "slow" else Fault.stall(after=4, timeout=60))

    async def main() -> tuple[Reader, int, list[dict[str, Any]]]:
        stream = await api.acompletion(policy=metered_policy, messages=MESSAGES, stream=True)
        reader = Reader(stream)
        await asyncio.wait_for(reader.first.wait(), 10)
        await asyncio.sleep(0.2)
        await asyncio.wait_for(stream.aclose(), 5)
        written = receipts_in(metered_policy.parent)
        read_by_then = len(reader.chunks)
        await asyncio.wait_for(reader.task, 5)
        return reader, read_by_then, written

    reader, read_by_then, written = arun(main())

    assert reader.went_on
    assert len(reader.chunks) == read_by_then < 40
    attempt, call = written
    assert (attempt["kind"], attempt["status"]) == ("attempt", "cancelled")
    assert (call["kind"], call["status"], call["error"]) == ("call", "cancelled", "GeneratorExit")
    (budget,) = attempt["budgets"]
    assert Decimal(budget["reserved"]) == 0
    assert Decimal(budget["spent"]) == Decimal(attempt["cost"]) > 0
    assert len(receipts_in(metered_policy.parent)) == 2


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel tells cancellations apart")
def test_a_reader_cancelled_by_someone_else_as_the_stream_is_closed_stays_cancelled(
    fp: FakeProvider, metered_policy: Path
) -> None:
    fp.script("a", Reply(text=WORDS, chunk_delay=0.05))

    async def main() -> Reader:
        stream = await api.acompletion(policy=metered_policy, messages=MESSAGES, stream=True)
        reader = Reader(stream)
        await asyncio.wait_for(reader.first.wait(), 10)
        reader.task.cancel()
        await asyncio.wait_for(stream.aclose(), 5)
        with pytest.raises(asyncio.CancelledError):
            await reader.task
        return reader

    reader = arun(main())

    assert not reader.went_on
    attempt, call = receipts_in(metered_policy.parent)
    assert (attempt["status"], call["status"]) == ("cancelled", "cancelled")
