"""``fastest`` fed by real calls through the executor and the fake provider.

Two deployments, each faster by one measure and slower by the other: the fake provider's
delays (tenths of a second) make the gaps, far larger than the machine's jitter.
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

from policyroute.execution.executor import Executor
from policyroute.execution.result import CallResult, StreamDone
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply, Usage

from .helpers import pool_policy

pytestmark = pytest.mark.timeout(60)

WORDS = "one two three four five six"


def _executor(fp: FakeProvider, *aliases: str) -> Executor:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    return Executor(load_policy_text(pool_policy(fp.openai_base, "fastest-calls", aliases)))


def _ask() -> Request:
    # stream=False even for streams: the executor routes a stream as one regardless
    return Request(messages=[{"role": "user", "content": "hello"}])


@pytest.fixture(autouse=True)
def _warm(fp: FakeProvider) -> None:
    """A process's first litellm calls spend a while importing and building clients; made
    here, so that the latencies measured by the tests are the provider's."""
    fp.reset()
    warm = _executor(fp, "warm")
    warm.complete(_ask())
    list(warm.stream(_ask()))
    fp.reset()


def _stream(ex: Executor, mode: str) -> CallResult:
    if mode == "sync":
        events = list(ex.stream(_ask()))
    else:

        async def consume() -> list[object]:
            return [e async for e in ex.astream(_ask())]

        events = asyncio.run(consume())
    done = events[-1]
    assert isinstance(done, StreamDone)
    return done.result


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stream_goes_to_the_deployment_with_the_earlier_first_token(
    fp: FakeProvider, mode: str
) -> None:
    """early sends its first word soon and the rest slowly (1.2 s in all); prompt waits
    0.6 s, then sends everything. Their whole streams make prompt look faster; a streaming
    user waits for the first token, and early's comes first (0.4 s apart: room for a loaded
    machine's pauses)."""
    fp.set_default("early", Reply(text=WORDS, chunk_delay=0.2))
    fp.set_default("prompt", Reply(text=WORDS, delay=0.6))
    ex = _executor(fp, "early", "prompt")
    explored = [_stream(ex, mode).deployment for _ in range(2)]
    assert explored == ["early", "prompt"]  # each unmeasured one tried once
    latency_early, latency_prompt = ex.stats.latency("early"), ex.stats.latency("prompt")
    assert latency_early is not None
    assert latency_prompt is not None
    assert latency_early > latency_prompt  # what the old ranking went by
    assert [_stream(ex, mode).deployment for _ in range(2)] == ["early", "early"]
    first = ex.stats.time_to_first_token("early")
    assert first is not None
    assert first < 0.6


def test_an_answer_goes_to_the_faster_deployment_whatever_its_answers_lengths(
    fp: FakeProvider,
) -> None:
    """bulk took 0.5 s for 4000-token answers, terse 0.2 s for 10-token ones: bulk's mean
    latency is higher, but it generates about a hundred times as fast."""
    fp.set_default("bulk", Reply(text="ok", usage=Usage(prompt=5, completion=4000), delay=0.5))
    fp.set_default("terse", Reply(text="ok", usage=Usage(prompt=5, completion=10), delay=0.2))
    ex = _executor(fp, "bulk", "terse")
    assert [ex.complete(_ask()).deployment for _ in range(2)] == ["bulk", "terse"]
    latency_bulk, latency_terse = ex.stats.latency("bulk"), ex.stats.latency("terse")
    assert latency_bulk is not None
    assert latency_terse is not None
    assert latency_bulk > latency_terse  # what the old ranking went by
    assert [ex.complete(_ask()).deployment for _ in range(2)] == ["bulk", "bulk"]
    fit = ex.stats.answer_fit("bulk")
    assert fit is not None
    assert fit.tokens == 4000


def test_streams_do_not_rank_unstreamed_calls(fp: FakeProvider) -> None:
    """A deployment measured only by streams is still explored by the first unstreamed call."""
    fp.set_default("*", Reply(text=WORDS))
    ex = _executor(fp, "a", "b")
    assert [_stream(ex, "sync").deployment for _ in range(2)] == ["a", "b"]
    assert ex.stats.ranking_latency("a") is None
    assert ex.stats.ranking_latency("a", stream=True) is not None
    assert ex.complete(_ask()).deployment == "a"
    assert ex.stats.answer_fit("a") is not None
    assert ex.stats.in_flight("a") == ex.stats.in_flight("b") == 0
