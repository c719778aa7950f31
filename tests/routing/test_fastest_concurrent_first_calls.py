"""Concurrent first calls under ``fastest`` spread over the deployments nobody has measured yet.

Every call routes before any answer comes back (the fake provider holds each answer for a
second and a half), so no deployment is measured while the calls are made: each unmeasured
deployment explored by a call in flight is ranked by how many calls it already has, and the
calls share them out instead of all but one piling onto the first listed.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator

import pytest

from policyroute import ChatPolicyRoute
from policyroute.execution.hooks import NullAccounting
from policyroute.testing import FakeProvider, Reply

from .helpers import pool_policy

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def held(fp: FakeProvider) -> Iterator[FakeProvider]:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    fp.reset()
    fp.set_default("*", Reply(text="one two three", delay=1.5))
    yield fp
    fp.reset()


def _model(fp: FakeProvider, aliases: list[str]) -> ChatPolicyRoute:
    policy = pool_policy(fp.openai_base, "fastest-concurrent", aliases)
    return ChatPolicyRoute(policy=policy, accounting=NullAccounting())


async def _invoke(llm: ChatPolicyRoute, calls: int) -> None:
    await asyncio.gather(*(llm.ainvoke("hello") for _ in range(calls)))


async def _stream(llm: ChatPolicyRoute, calls: int) -> None:
    async def one() -> None:
        async for _ in llm.astream("hello"):
            pass

    await asyncio.gather(*(one() for _ in range(calls)))


@pytest.mark.parametrize("kind", ["invoke", "stream"])
@pytest.mark.parametrize(("aliases", "calls"), [(["a", "b"], 10), (["a", "b", "c"], 9)])
def test_concurrent_first_calls_spread_over_the_unmeasured_deployments(
    held: FakeProvider, kind: str, aliases: list[str], calls: int
) -> None:
    llm = _model(held, aliases)
    asyncio.run((_invoke if kind == "invoke" else _stream)(llm, calls))
    sent = Counter(r.body["model"] for r in held.requests)
    assert sent == {alias: calls // len(aliases) for alias in aliases}
    assert all(llm.executor.stats.in_flight(alias) == 0 for alias in aliases)


def test_a_measured_deployment_still_comes_before_those_being_explored(
    held: FakeProvider,
) -> None:
    """Spreading the exploration keeps what fastest knows first: a deployment measured as
    answering takes the calls that find every unmeasured one explored already."""
    llm = _model(held, ["a", "b", "c"])
    llm.executor.stats.record_latency("c", 0.5, output_tokens=3)
    asyncio.run(_invoke(llm, 6))
    sent = Counter(r.body["model"] for r in held.requests)
    assert sent == {"a": 1, "b": 1, "c": 4}
