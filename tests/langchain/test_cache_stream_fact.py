"""LangChain's LLM cache and a policy that routes on ``stream``: a call that streams (a model
built with ``streaming=True``, or an ``invoke`` that a streaming handler such as
``astream_events`` turns into a stream) may be routed elsewhere than one that does not, so
the two must not answer each other from the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import set_llm_cache
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider

STREAMED_ROUTE = "  - name: streamed\n    when: {stream: true}\n    to: strong\n"


@pytest.fixture
def cache() -> Iterator[InMemoryCache]:
    cache = InMemoryCache()
    set_llm_cache(cache)
    try:
        yield cache
    finally:
        set_llm_cache(None)


@pytest.fixture
def stream_policy(make_policy: Callable[..., str]) -> str:
    policy = make_policy()
    return policy.replace("  - name: requested\n", STREAMED_ROUTE + "  - name: requested\n")


def _route(message: AIMessage) -> str:
    return str(message.response_metadata["policyroute"]["route"])


def test_a_streaming_model_does_not_answer_from_a_plain_calls_entry(
    fp: FakeProvider, stream_policy: str, cache: InMemoryCache
) -> None:
    plain = ChatPolicyRoute(policy=stream_policy, accounting=NullAccounting())
    streaming = ChatPolicyRoute(policy=stream_policy, accounting=NullAccounting(), streaming=True)
    assert _route(plain.invoke("hi")) == "default"
    assert _route(streaming.invoke("hi")) == "streamed"
    # Each kind is still cached.
    assert _route(plain.invoke("hi")) == "default"
    assert _route(streaming.invoke("hi")) == "streamed"
    assert [r.body["model"] for r in fp.requests] == ["fake-fast", "fake-strong"]


def test_an_invoke_streamed_for_astream_events_misses_a_plain_calls_entry(
    fp: FakeProvider, stream_policy: str, cache: InMemoryCache
) -> None:
    llm = ChatPolicyRoute(policy=stream_policy, accounting=NullAccounting())

    def ask(text: str, config: RunnableConfig) -> AIMessage:
        return llm.invoke(text, config)

    assert _route(llm.invoke("hi")) == "default"

    async def observed() -> list[str]:
        routes = []
        async for event in RunnableLambda(ask).astream_events("hi", version="v2"):
            if event["event"] == "on_chat_model_end":
                routes.append(_route(event["data"]["output"]))
        return routes

    assert asyncio.run(observed()) == ["streamed"]
    assert [r.body["model"] for r in fp.requests] == ["fake-fast", "fake-strong"]


def test_a_policy_that_does_not_route_on_stream_shares_entries_across_streaming(
    fp: FakeProvider, make_policy: Callable[..., str], cache: InMemoryCache
) -> None:
    policy: Any = make_policy()
    ChatPolicyRoute(policy=policy, accounting=NullAccounting()).invoke("hi")
    ChatPolicyRoute(policy=policy, accounting=NullAccounting(), streaming=True).invoke("hi")
    assert len(fp.requests) == 1
