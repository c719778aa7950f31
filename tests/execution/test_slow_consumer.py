"""A consumer that takes its time between chunks is not the provider's fault: no idle timeout
fires on it, and the deployment's latency (which `fastest` routes by) does not include it."""

from __future__ import annotations

import asyncio
import time

import pytest
from exec_support import ask
from test_streaming import MODES, make

from policyroute.execution.executor import StreamDelta, StreamDone, StreamEvent
from policyroute.testing import FakeProvider, Fault, Reply

PAUSE = 0.25  # the consumer's time per chunk, longer than the idle timeout
TEXT = "one two three four"
IDLE = 0.15


def consume_slowly(ex: object, mode: str) -> list[StreamEvent]:
    from exec_support import arun, ask

    if mode == "sync":
        events: list[StreamEvent] = []
        for event in ex.stream(ask()):  # type: ignore[attr-defined]
            events.append(event)
            if isinstance(event, StreamDelta):
                time.sleep(PAUSE)
        return events

    async def main() -> list[StreamEvent]:
        out: list[StreamEvent] = []
        async for event in ex.astream(ask()):  # type: ignore[attr-defined]
            out.append(event)
            if isinstance(event, StreamDelta):
                await asyncio.sleep(PAUSE)
        return out

    return arun(main())


@pytest.mark.parametrize("mode", MODES)
def test_a_slow_consumer_does_not_trip_the_idle_timeout(fp: FakeProvider, mode: str) -> None:
    fp.script("a", Reply(text=TEXT))
    ex, acct = make(fp, "a", first_token_timeout=10.0, idle_timeout=IDLE)

    events = consume_slowly(ex, mode)

    assert isinstance(events[-1], StreamDone)
    assert events[-1].result.response.choices[0].message.content == TEXT
    assert acct.statuses == ["ok"]


@pytest.mark.parametrize("mode", MODES)
def test_a_slow_consumer_does_not_make_the_deployment_look_slow(
    fp: FakeProvider, mode: str
) -> None:
    # A process's first litellm call spends a while on litellm's own imports: warm it up on
    # another executor, so that the latency measured here is the provider's.
    fp.script("a", Reply(text=TEXT), Reply(text=TEXT))
    warm, _ = make(fp, "a")
    list(warm.stream(ask()))
    ex, acct = make(fp, "a", first_token_timeout=10.0, idle_timeout=2.0)

    events = consume_slowly(ex, mode)

    deltas = sum(isinstance(e, StreamDelta) for e in events)
    assert deltas >= 3
    latency = ex.stats.latency("a")
    assert latency is not None
    # The receipt keeps the wall time the call took; routing sees the provider's time.
    assert acct.settled[0][1].latency_s >= deltas * PAUSE * 0.9
    assert latency < PAUSE


@pytest.mark.parametrize("mode", MODES)
def test_a_provider_stalling_after_content_still_hits_the_idle_timeout_with_a_slow_consumer(
    fp: FakeProvider, mode: str
) -> None:
    from policyroute.errors import StreamInterruptedError

    # A sync stream notices a silent connection through httpx's read timeout, the larger of
    # the two deadlines; 2 s keeps that short, after a first call has warmed litellm up.
    fp.script("a", Reply(text=TEXT), Fault.stall(after=2, reply=Reply(text=TEXT), timeout=5))
    ex, _ = make(fp, "a", first_token_timeout=2.0, idle_timeout=IDLE + 0.2)
    consume_slowly(ex, mode)
    started = time.perf_counter()
    with pytest.raises(StreamInterruptedError) as info:
        consume_slowly(ex, mode)
    assert info.value.error_class == "timeout"
    assert time.perf_counter() - started < 3.0
