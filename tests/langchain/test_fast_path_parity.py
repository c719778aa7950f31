"""Whatever LangChain does on its normal path, a call through ChatPolicyRoute's unobserved fast
path must not skip: each case runs the same call with nothing observing it (the fast path may
apply) and with a silent handler attached (LangChain's full path), and compares."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_llm_cache
from langchain_core.messages import AIMessage
from langchain_core.rate_limiters import InMemoryRateLimiter
from langchain_core.runnables import ConfigurableField
from langchain_core.tracers.context import collect_runs
from langsmith import tracing_context

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.unobserved import unobserved
from policyroute.testing import FakeProvider, Reply, ToolCall, Usage


class Silent(BaseCallbackHandler):
    """A handler that forces LangChain's full path and records the events it saw."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.events.append("start")

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.events.append("end")


class CountingLimiter(InMemoryRateLimiter):
    def __init__(self) -> None:
        super().__init__(requests_per_second=1000, check_every_n_seconds=0.001)
        self.acquired = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return super().acquire(blocking=blocking)

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return await super().aacquire(blocking=blocking)


@pytest.fixture(autouse=True)
def _answer(fp: FakeProvider) -> None:
    fp.set_default(
        "*",
        Reply(
            text="four", tool_calls=[ToolCall("add", {"a": 2})], usage=Usage(prompt=9, completion=3)
        ),
    )


@pytest.fixture
def global_cache() -> Iterator[InMemoryCache]:
    cache = InMemoryCache()
    set_llm_cache(cache)
    yield cache
    set_llm_cache(None)


def _shape(message: AIMessage) -> dict[str, Any]:
    meta = dict(message.response_metadata)
    meta["policyroute"] = {k: v for k, v in meta["policyroute"].items() if k in ("route",)}
    meta["id"] = str(meta.get("id")).split("-")[0]  # each call's own response id
    return {
        "type": type(message).__name__,
        # v1 content blocks carry each call's tool call ids; the rest must be equal.
        "content": message.content
        if isinstance(message.content, str)
        else [
            {k: v for k, v in block.items() if k != "id"} if isinstance(block, dict) else block
            for block in message.content
        ],
        "metadata": meta,
        "usage": message.usage_metadata,
        "tool_calls": [(c["name"], c["args"]) for c in message.tool_calls],
        "id_prefix": str(message.id).split("-")[0],
    }


def _both(model: Any, *, config: dict[str, Any] | None = None) -> list[AIMessage]:
    """The same call four ways: sync and async, fast path allowed and full path forced."""
    base = dict(config or {})
    observed = {**base, "callbacks": [Silent()]}

    async def run_async() -> list[AIMessage]:
        return [await model.ainvoke("2+2?", base), await model.ainvoke("2+2?", observed)]

    return [model.invoke("2+2?", base), model.invoke("2+2?", observed), *asyncio.run(run_async())]


def test_plain_calls_answer_alike_on_both_paths(llm: ChatPolicyRoute) -> None:
    shapes = [_shape(m) for m in _both(llm, config={"metadata": {"task": "code"}})]
    assert all(shape == shapes[0] for shape in shapes)
    assert shapes[0]["metadata"]["policyroute"]["route"] == "code"


def test_a_global_cache_answers_on_both_paths(
    fp: FakeProvider, llm: ChatPolicyRoute, global_cache: InMemoryCache
) -> None:
    answers = _both(llm)
    assert len(fp.requests) == 1
    assert [m.content for m in answers] == ["four"] * 4


def test_a_rate_limiter_is_asked_on_both_paths(make_policy: Any) -> None:
    limiter = CountingLimiter()
    model = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting(), rate_limiter=limiter)
    _both(model)
    assert limiter.acquired == 4


def test_constructor_callbacks_see_every_call(make_policy: Any) -> None:
    handler = Silent()
    model = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting(), callbacks=[handler])
    model.invoke("hi")
    asyncio.run(model.ainvoke("hi"))
    assert handler.events == ["start", "end"] * 2


def test_tracing_by_context_takes_the_full_path(
    llm: ChatPolicyRoute, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-fake")
    assert unobserved(llm, {}, {}, async_api=False)
    with tracing_context(enabled=True):
        assert not unobserved(llm, {}, {}, async_api=False)
        assert not unobserved(llm, {}, {}, async_api=True)


def test_listeners_run_name_and_events_see_the_call(llm: ChatPolicyRoute) -> None:
    seen: list[str] = []
    listened = llm.with_listeners(
        on_start=lambda _: seen.append("start"), on_end=lambda _: seen.append("end")
    )
    listened.invoke("hi")
    asyncio.run(listened.ainvoke("hi"))
    assert seen == ["start", "end"] * 2
    with collect_runs() as runs:
        llm.with_config(run_name="triage").invoke("hi")
    assert [run.name for run in runs.traced_runs] == ["triage"]

    async def kinds() -> list[str]:
        return [e["event"] async for e in llm.astream_events("hi", version="v2")]

    events = asyncio.run(kinds())
    assert events[0] == "on_chat_model_start"
    assert events[-1] == "on_chat_model_end"
    assert "on_chat_model_stream" in events


def test_disable_streaming_and_output_version_match_the_full_path(make_policy: Any) -> None:
    for fields in ({"disable_streaming": True}, {"output_version": "v1"}, {"streaming": True}):
        model = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting(), **fields)
        shapes = [_shape(m) for m in _both(model)]
        assert all(shape == shapes[0] for shape in shapes), fields
    v1 = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting(), output_version="v1")
    assert v1.invoke("hi").content[0] == {"type": "text", "text": "four"}  # type: ignore[index]


def test_configurable_fields_and_alternatives_route_per_call(
    fp: FakeProvider, llm: ChatPolicyRoute, make_policy: Any
) -> None:
    configurable = llm.configurable_fields(
        temperature=ConfigurableField(id="temperature"), model=ConfigurableField(id="model")
    )
    message = configurable.invoke(
        "hi", config={"configurable": {"temperature": 0.3, "model": "big"}}
    )
    body = fp.requests[-1].body
    assert isinstance(body, dict)
    assert body["temperature"] == 0.3
    assert message.response_metadata["policyroute"]["route"] == "requested"
    strong = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting(), model="big")
    alternatives = llm.configurable_alternatives(
        ConfigurableField(id="which"), default_key="plain", strong=strong
    )
    picked = asyncio.run(alternatives.ainvoke("hi", config={"configurable": {"which": "strong"}}))
    assert picked.response_metadata["policyroute"]["route"] == "requested"
    assert alternatives.invoke("hi").response_metadata["policyroute"]["route"] == "default"
