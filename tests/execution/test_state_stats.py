"""In-flight counts and latencies under cancelled, abandoned, refused and failed calls: every
attempt that counted itself in flight counts itself out, and only answers are latencies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from exec_support import RecordingAccounting, StubPolicy, arun, ask, candidate

from policyroute.execution.breaker import CircuitBreakers
from policyroute.execution.executor import Executor
from policyroute.policy.model import CircuitBreakerSpec, DefaultsSpec, RetrySpec
from policyroute.testing import FakeProvider

pytestmark = pytest.mark.timeout(30)

NO_RETRY = DefaultsSpec(retry=RetrySpec(attempts=0))


class SlowToClose:
    """An opened stream that sends nothing, and whose closing waits until told to finish."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.closing = asyncio.Event()
        self.closed = asyncio.Event()

    def __aiter__(self) -> SlowToClose:
        return self

    async def __anext__(self) -> Any:
        self.reading.set()
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closing.set()
        await self.closed.wait()


def test_a_stream_cancelled_again_while_closing_still_counts_out_and_settles(
    fp: FakeProvider,
) -> None:
    """A task group or timeout cancels a streaming task, and cancels it again while the
    provider's stream is being closed: the attempt still leaves the in-flight count, gives
    its breaker probe back and is settled."""
    stream = SlowToClose()

    async def acompletion(**params: Any) -> SlowToClose:
        return stream

    clock = [0.0]
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=10), clock=lambda: clock[0])
    breakers.record_failure("a", "server_error")
    clock[0] = 10.0  # half-open: the stream is the probe
    acct = RecordingAccounting()
    policy = StubPolicy([candidate("a", fp.openai_base)], defaults=NO_RETRY)
    ex = Executor(policy, accounting=acct, breakers=breakers, acompletion=acompletion)

    async def consume() -> None:
        async for _ in ex.astream(ask()):
            pass

    async def scenario() -> None:
        task = asyncio.create_task(consume())
        await stream.reading.wait()
        assert ex.stats.in_flight("a") == 1
        task.cancel()
        await stream.closing.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(scenario())
    assert ex.stats.in_flight("a") == 0
    assert ex.stats.latency("a") is None
    assert acct.statuses == ["cancelled"]
    assert breakers.is_available("a")
