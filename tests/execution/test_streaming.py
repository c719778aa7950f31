"""Streaming: transparent failover before the first token, no silent truncation after it."""

from __future__ import annotations

from typing import Any

import pytest
from exec_support import RecordingAccounting, StubPolicy, arun, ask, candidate

from policyroute.errors import StreamInterruptedError
from policyroute.execution.executor import Executor, StreamDelta, StreamDone, StreamEvent
from policyroute.policy.model import DefaultsSpec, RetrySpec
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(20)
MODES = ["sync", "async"]
TEXT = "one two three four five six"


def make(fp: FakeProvider, *aliases: str, **defaults: Any) -> tuple[Executor, RecordingAccounting]:
    spec = DefaultsSpec(retry=RetrySpec(attempts=0), **defaults)
    policy = StubPolicy([candidate(a, fp.openai_base) for a in aliases], defaults=spec)
    acct = RecordingAccounting()
    return Executor(policy, accounting=acct, sleep=lambda s: None), acct


def collect(ex: Executor, mode: str, limit: int | None = None) -> list[StreamEvent]:
    if mode == "sync":
        events: list[StreamEvent] = []
        stream = ex.stream(ask())
        for event in stream:
            events.append(event)
            if limit is not None and len(events) >= limit:
                stream.close()  # type: ignore[attr-defined]
                break
        return events

    async def main() -> list[StreamEvent]:
        out: list[StreamEvent] = []
        stream = ex.astream(ask())
        async for event in stream:
            out.append(event)
            if limit is not None and len(out) >= limit:
                await stream.aclose()  # type: ignore[attr-defined]
                break
        return out

    return arun(main())


def text_of(events: list[StreamEvent]) -> str:
    return "".join(
        e.chunk.choices[0].delta.content or ""
        for e in events
        if isinstance(e, StreamDelta) and e.chunk.choices
    )


@pytest.mark.parametrize("mode", MODES)
def test_complete_stream_ends_with_done_and_usage(fp: FakeProvider, mode: str):
    fp.script("a", Reply(text=TEXT))
    ex, acct = make(fp, "a")
    events = collect(ex, mode)
    assert text_of(events) == TEXT
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert done.result.usage.output_tokens == 6
    assert done.result.response.choices[0].message.content == TEXT
    assert done.result.time_to_first_token_s is not None
    assert acct.statuses == ["ok"]
    assert [o.status for o in acct.finished] == ["ok"]
    body = fp.requests_for("a")[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "num_retries" not in body


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(503),
        Fault.connection_reset(),
        Fault.stream_cut(after=0),
        Fault.stream_cut(after=1),  # only the role chunk got through: nothing was shown
    ],
)
def test_failure_before_first_token_falls_over_silently(fp: FakeProvider, mode: str, fault: Fault):
    fp.script("a", fault)
    fp.script("b", Reply(text=TEXT))
    ex, acct = make(fp, "a", "b")
    events = collect(ex, mode)
    assert text_of(events) == TEXT
    assert isinstance(events[-1], StreamDone)
    assert [a.alias for a in events[-1].result.attempts] == ["a", "b"]
    assert acct.statuses == ["error", "ok"]


@pytest.mark.parametrize("mode", MODES)
def test_slow_first_token_times_out_then_fails_over(fp: FakeProvider, mode: str):
    fp.script("a", Fault.slow_first_token(3.0))
    fp.script("b", Reply(text=TEXT))
    ex, _ = make(fp, "a", "b", first_token_timeout=0.3, idle_timeout=0.3)
    events = collect(ex, mode)
    assert isinstance(events[-1], StreamDone)
    assert [(a.alias, a.error_class) for a in events[-1].result.attempts] == [
        ("a", "timeout"),
        ("b", None),
    ]
    assert events[-1].result.attempts[0].latency_s < 2.0


@pytest.mark.parametrize("mode", MODES)
def test_cut_after_content_raises_interrupted_with_partial_text(fp: FakeProvider, mode: str):
    fp.script("a", Fault.stream_cut(after=3, reply=Reply(text=TEXT)))
    ex, acct = make(fp, "a", "b")
    seen: list[StreamEvent] = []

    def consume_sync() -> None:
        seen.extend(ex.stream(ask()))

    async def consume_async() -> None:
        async for event in ex.astream(ask()):
            seen.append(event)

    with pytest.raises(StreamInterruptedError) as info:
        consume_sync() if mode == "sync" else arun(consume_async())
    assert not any(isinstance(e, StreamDone) for e in seen)
    assert info.value.partial_text == "one two"
    assert info.value.error_class == "connection"
    assert fp.attempts("b") == 0
    assert acct.statuses == ["interrupted"]
    assert [o.status for o in acct.finished] == ["interrupted"]


@pytest.mark.parametrize("mode", MODES)
def test_stall_after_content_hits_the_idle_timeout(fp: FakeProvider, mode: str):
    fp.script("a", Fault.stall(after=3, reply=Reply(text=TEXT), timeout=5))
    ex, _ = make(fp, "a", first_token_timeout=0.3, idle_timeout=0.3)
    with pytest.raises(StreamInterruptedError) as info:
        collect(ex, mode)
    assert info.value.error_class == "timeout"
    assert info.value.partial_text == "one two"


@pytest.mark.parametrize("mode", MODES)
def test_malformed_chunk_after_content_is_an_interruption(fp: FakeProvider, mode: str):
    fp.script("a", Fault.malformed_chunk(after=3, reply=Reply(text=TEXT)))
    ex, _ = make(fp, "a")
    with pytest.raises(StreamInterruptedError) as info:
        collect(ex, mode)
    assert info.value.error_class == "malformed_response"


@pytest.mark.parametrize("mode", MODES)
def test_missing_done_still_completes_with_usage(fp: FakeProvider, mode: str):
    fp.script("a", Fault.missing_done(reply=Reply(text=TEXT)))
    ex, _ = make(fp, "a")
    events = collect(ex, mode)
    assert isinstance(events[-1], StreamDone)
    assert events[-1].result.usage.output_tokens == 6


@pytest.mark.parametrize("mode", MODES)
def test_abandoned_stream_settles_and_finishes(fp: FakeProvider, mode: str):
    fp.script("a", Reply(text=TEXT, chunk_delay=0.05))
    ex, acct = make(fp, "a")
    events = collect(ex, mode, limit=2)
    assert len(events) == 2
    assert acct.statuses == ["cancelled"]
    assert acct.settled[0][1].provider_billed
    assert [o.status for o in acct.finished] == ["cancelled"]
    assert ex.stats.in_flight("a") == 0
