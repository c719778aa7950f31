"""Calls nothing observes skip LangChain's run machinery, and answer exactly as it would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_debug, set_llm_cache
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.rate_limiters import InMemoryRateLimiter
from langchain_core.tracers.context import collect_runs

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.unobserved import answer, unobserved
from policyroute.testing import FakeProvider, Reply, ToolCall, Usage


class Recorder(BaseCallbackHandler):
    """A handler that only records which events reached it."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.events.append("start")

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.events.append("end")


@pytest.fixture
def no_global_cache() -> Iterator[None]:
    yield
    set_llm_cache(None)


def _shape(message: AIMessage) -> dict[str, Any]:
    """Everything of a message but what differs between two calls (ids, latencies)."""
    meta = message.response_metadata
    policyroute = meta["policyroute"]
    return {
        "content": message.content,
        "metadata_keys": list(meta),
        "policyroute_keys": list(policyroute),
        "model_name": meta["model_name"],
        "finish_reason": meta["finish_reason"],
        "route": policyroute["route"],
        "usage": message.usage_metadata,
        "tool_calls": [(c["name"], c["args"]) for c in message.tool_calls],
        "additional_kwargs": message.additional_kwargs,
    }


def _script(fp: FakeProvider) -> None:
    fp.set_default(
        "*",
        Reply(
            text="four",
            tool_calls=[ToolCall("add", {"a": 2, "b": 2})],
            usage=Usage(prompt=9, completion=3),
        ),
    )


def test_direct_and_full_paths_answer_alike(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    _script(fp)
    recorder = Recorder()
    direct = llm.invoke([HumanMessage("2+2?")])
    full = llm.invoke([HumanMessage("2+2?")], config={"callbacks": [recorder]})
    assert recorder.events == ["start", "end"]
    assert _shape(direct) == _shape(full)
    assert direct.id
    assert full.id


def test_async_direct_and_full_paths_answer_alike(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    _script(fp)
    recorder = Recorder()

    async def both() -> tuple[AIMessage, AIMessage]:
        direct = await llm.ainvoke([HumanMessage("2+2?")], config={"metadata": {"task": "x"}})
        full = await llm.ainvoke(
            [HumanMessage("2+2?")], config={"callbacks": [recorder], "metadata": {"task": "x"}}
        )
        return direct, full

    direct, full = asyncio.run(both())
    assert recorder.events == ["start", "end"]
    assert _shape(direct) == _shape(full)


def test_direct_path_routes_on_the_config_facts(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.set_default("*", Reply(text="ok"))
    answer_ = llm.invoke("hi", config={"metadata": {"task": "code"}})
    assert answer_.response_metadata["policyroute"]["route"] == "code"
    answer_ = asyncio.run(llm.ainvoke("hi", config={"tags": ["strong"]}))
    assert answer_.response_metadata["policyroute"]["route"] == "code"


def test_observed_calls_take_langchains_path(
    fp: FakeProvider, make_policy: Any, no_global_cache: None
) -> None:
    fp.set_default("*", Reply(text="ok"))
    policy = make_policy()
    plain = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    config: dict[str, Any] = {}
    assert unobserved(plain, config, {}, async_api=False)
    assert unobserved(plain, config, {}, async_api=True)
    assert not unobserved(plain, {"callbacks": [Recorder()]}, {}, async_api=True)
    assert not unobserved(plain, config, {"stream": True}, async_api=False)
    with collect_runs() as runs:
        assert not unobserved(plain, config, {}, async_api=True)
        plain.invoke("hi")
    assert len(runs.traced_runs) == 1
    set_debug(True)
    try:
        assert not unobserved(plain, config, {}, async_api=False)
    finally:
        set_debug(False)
    for field, value in (
        ("callbacks", [Recorder()]),
        ("verbose", True),
        ("cache", InMemoryCache()),
        ("cache", True),
        ("rate_limiter", InMemoryRateLimiter(requests_per_second=100)),
        ("streaming", True),
        ("output_version", "v1"),
    ):
        model = ChatPolicyRoute(policy=policy, accounting=NullAccounting(), **{field: value})
        assert not unobserved(model, config, {}, async_api=True), field
    set_llm_cache(InMemoryCache())
    assert not unobserved(plain, config, {}, async_api=True)
    assert unobserved(
        ChatPolicyRoute(policy=policy, accounting=NullAccounting(), cache=False),
        config,
        {},
        async_api=True,
    )


def test_a_cache_still_answers_repeated_calls(
    fp: FakeProvider, make_policy: Any, no_global_cache: None
) -> None:
    fp.set_default("*", Reply(text="cached"))
    model = ChatPolicyRoute(
        policy=make_policy(), accounting=NullAccounting(), cache=InMemoryCache()
    )
    first = model.invoke("same question")
    second = model.invoke("same question")
    assert first.content == second.content == "cached"
    assert len(fp.requests) == 1


def _result(metadata: dict[str, Any], **generation_info: Any) -> ChatResult:
    message = AIMessage("x", response_metadata=metadata)
    generation = ChatGeneration(message=message, generation_info=generation_info or None)
    return ChatResult(generations=[generation], llm_output={"model_name": "m"})


def test_answer_merges_metadata_as_langchain_does() -> None:
    run_id = uuid.uuid4()
    message = answer(_result({"extra": 1}, finish_reason="stop"), run_id)
    assert list(message.response_metadata.items()) == [
        ("model_name", "m"),
        ("finish_reason", "stop"),
        ("extra", 1),
    ]
    assert message.id == f"lc_run--{run_id}-0"
    # The message's own values win over generation info and llm output.
    message = answer(_result({"finish_reason": "length"}, finish_reason="stop"), run_id)
    assert message.response_metadata == {"model_name": "m", "finish_reason": "length"}


def test_answer_keeps_metadata_that_already_leads_with_the_merged_keys() -> None:
    result = _result(
        {"model_name": "mine", "finish_reason": "stop", "other": 2}, finish_reason="stop"
    )
    metadata = result.generations[0].message.response_metadata
    message = answer(result, None)
    assert message.response_metadata is metadata
    assert str(message.id).startswith("lc_run--")
