"""``fastest`` learns from calls their callers cancel while the deployment keeps them waiting
(``asyncio.wait_for``, a cancelled task): the deployment takes at least that long.

Before, such a call taught nothing. A deployment that hangs until its callers give up kept its
old figure, or stayed unmeasured, and was tried first again by every call.
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest
from langchain_core.messages import AIMessage

from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply

from .helpers import pool_policy

pytestmark = pytest.mark.timeout(60)

CANCEL_AFTER = 0.5
B_DELAY = 0.1


def _model(fp: FakeProvider, name: str) -> ChatPolicyRoute:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    return ChatPolicyRoute(policy=pool_policy(fp.openai_base, name, ["a", "b"]))


@pytest.fixture(autouse=True)
def _warm(fp: FakeProvider) -> None:
    """A process's first async calls of each kind import code and are not measured (see
    test_fastest_cold_start): made here, so that the calls of the tests are."""
    fp.reset()
    fp.set_default("*", Reply(text="warm"))
    warm = _model(fp, "cancelled-waits-warm")

    async def both() -> None:
        await warm.ainvoke("hello")
        async for _ in warm.astream("hello"):
            pass

    asyncio.run(both())
    fp.reset()


def _deployment(message: AIMessage) -> str:
    deployment = message.response_metadata["policyroute"]["deployment"]
    assert isinstance(deployment, str)
    return deployment


async def _invoke(model: ChatPolicyRoute) -> str:
    return _deployment(await model.ainvoke("hello"))


async def _first_chunk(model: ChatPolicyRoute) -> None:
    async for _ in model.astream("hello"):
        return


async def _stream(model: ChatPolicyRoute) -> str:
    chunks = [chunk async for chunk in model.astream("hello")]
    return next(_deployment(c) for c in chunks if "policyroute" in c.response_metadata)


def test_a_measured_deployment_that_starts_hanging_loses_its_place(fp: FakeProvider) -> None:
    """a answered fast and b slowly; then a hangs and the caller gives up after 0.5 s. a's
    figure takes the wait in (0.5 s and more, against b's 0.1 s): the next call goes to b.
    Before, a kept its fast figure and the next call hung on it too."""
    fp.set_default("a", Reply(text="fast"))
    fp.set_default("b", Reply(text="slow", delay=B_DELAY))
    model = _model(fp, "cancelled-waits-measured")

    async def run() -> list[str]:
        seen = [await _invoke(model), await _invoke(model), await _invoke(model)]
        fp.set_default("a", Fault.no_response(30))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(model.ainvoke("hello"), CANCEL_AFTER)
        seen.append(await asyncio.wait_for(_invoke(model), 5))
        return seen

    assert asyncio.run(run()) == ["a", "b", "a", "b"]
    stats = model.executor.stats
    assert stats.in_flight("a") == stats.in_flight("b") == 0
    # The wait is a lower bound, not an answer: the answered latency is unchanged by it.
    latency = stats.latency("a")
    assert latency is not None
    assert latency < B_DELAY
    ranking = stats.ranking_latency("a")
    assert ranking is not None
    assert ranking > B_DELAY


def test_an_unmeasured_deployment_that_hangs_is_not_explored_again(fp: FakeProvider) -> None:
    """a hangs from the start. The first call explores it and is cancelled; the second goes
    to b, unmeasured too. The third must not explore a again: it took at least 0.5 s, longer
    than b's answer. Before, a stayed unmeasured and unmeasured deployments go first."""
    fp.set_default("a", Fault.no_response(30))
    fp.set_default("b", Reply(text="b"))
    model = _model(fp, "cancelled-waits-unmeasured")

    async def run() -> list[str]:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(model.ainvoke("hello"), CANCEL_AFTER)
        return [await asyncio.wait_for(_invoke(model), 5) for _ in range(3)]

    assert asyncio.run(run()) == ["b", "b", "b"]
    assert len(fp.requests_for("a")) == 1


def test_a_stream_cancelled_before_its_first_token_ranks_streams_by_the_wait(
    fp: FakeProvider,
) -> None:
    """Streams are ranked by time to first token: one cancelled while a keeps it waiting for
    its first token teaches that a's first token takes at least that long."""
    fp.set_default("a", Reply(text="fast"))
    fp.set_default("b", Reply(text="slow", delay=B_DELAY))
    model = _model(fp, "cancelled-waits-stream")

    async def run() -> list[str]:
        seen = [await _stream(model), await _stream(model), await _stream(model)]
        fp.set_default("a", Fault.slow_first_token(30))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(_first_chunk(model), CANCEL_AFTER)
        seen.append(await asyncio.wait_for(_stream(model), 5))
        return seen

    assert asyncio.run(run()) == ["a", "b", "a", "b"]
    first_token = model.executor.stats.time_to_first_token("a")
    assert first_token is not None
    assert first_token > B_DELAY
    # Unstreamed requests are measured apart: a's answers were never waited on.
    assert model.executor.stats.ranking_latency("a") is None


def test_a_caller_that_gives_up_sooner_than_the_deployment_answers_teaches_nothing(
    fp: FakeProvider,
) -> None:
    """A cancellation sooner than what is known says nothing new. On a measured deployment,
    its figure stays as its answers made it; on an unmeasured one, while another is known to
    take longer, it stays unmeasured (a short wait must not pass for a fast answer)."""
    fp.set_default("*", Reply(text="x", delay=0.3))
    model = _model(fp, "cancelled-waits-sooner")
    stats = model.executor.stats

    async def run() -> None:
        assert await _invoke(model) == "a"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(model.ainvoke("hello"), 0.05)  # on b, unmeasured
        assert stats.ranking_latency("b") is None
        assert await _invoke(model) == "b"
        before = stats.ranking_latency("a"), stats.ranking_latency("b")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(model.ainvoke("hello"), 0.05)  # on the faster of the two
        assert (stats.ranking_latency("a"), stats.ranking_latency("b")) == before

    asyncio.run(run())
    assert len(fp.requests) == 4
