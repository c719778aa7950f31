"""``fastest`` learns a deployment's time to first token from streams their consumers close
early: what streams are ranked by was seen, though the answer was not read to its end."""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

from policyroute.execution.executor import Executor
from policyroute.execution.result import CallResult, StreamDelta, StreamDone
from policyroute.policy.loader import load_policy_text
from policyroute.request import Request
from policyroute.routing.stats import DeploymentStatsTracker
from policyroute.testing import FakeProvider, Reply

from .helpers import pool_policy

pytestmark = pytest.mark.timeout(60)

WORDS = "one two three four five six"


def _executor(fp: FakeProvider) -> Executor:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    return Executor(load_policy_text(pool_policy(fp.openai_base, "closed-streams", ["a", "b"])))


def _ask() -> Request:
    return Request(messages=[{"role": "user", "content": "hello"}])


@pytest.fixture(autouse=True)
def _warm(fp: FakeProvider) -> None:
    """A process's first litellm calls of each kind import code, and are not measured (see
    test_fastest_cold_start): made here, so that the calls of the tests are."""
    fp.reset()
    fp.set_default("*", Reply(text=WORDS))
    warm = _executor(fp)
    warm.complete(_ask())
    list(warm.stream(_ask()))

    async def both() -> None:
        await warm.acomplete(_ask())
        async for _ in warm.astream(_ask()):
            pass

    asyncio.run(both())


def _first_chunk_then_close(ex: Executor, mode: str) -> str:
    """Stream, read the first chunk, close the stream; the deployment it came from."""
    if mode == "sync":
        events = ex.stream(_ask())
        first = next(events)
        events.close()
    else:

        async def read_one() -> object:
            events = ex.astream(_ask())
            try:
                return await events.__anext__()
            finally:
                await events.aclose()

        first = asyncio.run(read_one())
    assert isinstance(first, StreamDelta)
    model = first.chunk.model
    assert isinstance(model, str)
    return model.rsplit("/", 1)[-1]


def _whole_stream(ex: Executor) -> CallResult:
    done = list(ex.stream(_ask()))[-1]
    assert isinstance(done, StreamDone)
    return done.result


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stream_closed_after_its_first_token_measures_the_deployment(
    fp: FakeProvider, mode: str
) -> None:
    fp.reset()
    fp.set_default("*", Reply(text=WORDS))
    ex = _executor(fp)
    assert _first_chunk_then_close(ex, mode) == "a"
    first_token = ex.stats.time_to_first_token("a")
    assert first_token is not None
    assert ex.stats.ranking_latency("a", stream=True) == first_token
    assert ex.stats.latency("a") is None  # the whole answer's time was never seen
    assert ex.stats.in_flight("a") == 0
    # a is measured now: the next stream explores b instead of trying a again
    assert _first_chunk_then_close(ex, mode) == "b"
    assert ex.stats.time_to_first_token("b") is not None


def test_a_stream_closed_before_its_first_token_counts_as_a_wait(fp: FakeProvider) -> None:
    """Closed before its first token, a stream showed no first token, only that a takes at
    least that long (see test_fastest_cancelled_waits): a is not explored first again."""
    fp.reset()
    fp.set_default("*", Reply(text=WORDS, delay=30))
    ex = _executor(fp)

    async def cancelled_while_waiting() -> None:
        events = ex.astream(_ask())
        with pytest.raises(asyncio.TimeoutError):  # on 3.10 not yet the builtin TimeoutError
            await asyncio.wait_for(events.__anext__(), 0.2)
        await events.aclose()

    asyncio.run(cancelled_while_waiting())
    waited = ex.stats.time_to_first_token("a")
    assert waited is not None
    assert waited >= 0.2
    assert ex.stats.latency("a") is None  # no answer
    assert ex.stats.ranking_latency("a") is None  # unstreamed requests: unmeasured
    assert ex.stats.in_flight("a") == 0
    fp.reset()
    fp.set_default("*", Reply(text=WORDS))
    assert _whole_stream(ex).deployment == "b"  # unmeasured: explored before a


def test_a_first_token_alone_counts_as_an_answer_not_a_latency() -> None:
    stats = DeploymentStatsTracker(alpha=0.5)
    stats.start("a", stream=True)
    stats.finish("a", first_token=0.4, stream=True)
    assert stats.in_flight("a") == 0
    assert stats.ranking_latency("a", stream=True) == 0.4
    assert stats.latency("a") is None
    assert stats.ranking_latency("a") is None  # unstreamed answers: still unmeasured
    # after a failure, a first token moves the deployment's success rate back up
    stats.record_failure("b")
    assert stats.ranking_latency("b", stream=True) == float("inf")
    stats.record_first_token("b", 0.2)
    assert stats.ranking_latency("b", stream=True) == pytest.approx(0.4)  # 0.2 / (1 - 0.5)


def test_an_impossible_first_token_alone_is_left_out() -> None:
    stats = DeploymentStatsTracker()
    for seconds in (-1.0, float("nan"), float("inf")):
        stats.record_first_token("a", seconds)
    assert stats.ranking_latency("a", stream=True) is None
    stats.record_first_token("b", 0.3)
    stats.record_first_token("b", float("nan"))
    assert stats.ranking_latency("b", stream=True) == 0.3
