"""Streams, batches and wrappers as LangChain users call them: streamed tool calls merge to the
unstreamed answer, usage arrives exactly once, each batch item routes by its own facts."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Generator
from functools import reduce
from operator import add
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from policyroute.errors import BadRequestError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply, ToolCall, Usage


def _event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return json.dumps(
        {
            "id": "chatcmpl-raw",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "fake-fast",
            "choices": choices,
            **extra,
        }
    )


def _call(index: int, **fields: Any) -> dict[str, Any]:
    function = {k: v for k, v in fields.items() if k in ("name", "arguments")}
    call: dict[str, Any] = {"index": index, "function": function}
    if "id" in fields:
        call.update(id=fields["id"], type="function")
    return {"tool_calls": [call]}


def _merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return reduce(add, chunks)


def test_streamed_parallel_tool_calls_merge_to_the_unstreamed_answer(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.set_default(
        "*",
        Reply(
            tool_calls=[ToolCall("add", {"a": 1, "b": 2}), ToolCall("shout", {"text": "hi"})],
            usage=Usage(prompt=5, completion=7),
        ),
    )
    whole = llm.invoke("go")
    merged = _merged(list(llm.stream("go")))
    strip = [(c["name"], c["args"]) for c in whole.tool_calls]
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == strip
    assert merged.usage_metadata == whole.usage_metadata
    assert merged.response_metadata["finish_reason"] == whole.response_metadata["finish_reason"]


def test_tool_ids_names_and_arguments_in_separate_chunks(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.set_default(
        "*",
        Fault.raw_stream(
            _event({"role": "assistant", "content": None, **_call(0, id="call_A", arguments="")}),
            _event(_call(0, name="add")),
            _event(_call(1, id="call_B", name="shout", arguments='{"te')),
            _event(_call(0, arguments='{"a": 1}')),
            _event(_call(1, arguments='xt": "hi"}')),
            _event({}, "tool_calls"),
            _event(None, usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),  # type: ignore[arg-type]
            done=True,
        ),
    )
    chunks = list(llm.stream("go"))
    merged = _merged(chunks)
    assert [(c["id"], c["name"], c["args"]) for c in merged.tool_calls] == [
        ("call_A", "add", {"a": 1}),
        ("call_B", "shout", {"text": "hi"}),
    ]
    assert merged.invalid_tool_calls == []
    assert [c.usage_metadata for c in chunks if c.usage_metadata] == [
        {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    ]


def test_arguments_that_are_not_json_are_invalid_tool_calls(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.set_default("*", Reply(tool_calls=[ToolCall("add", "{a: 1")]))
    message = llm.invoke("go")
    assert message.tool_calls == []
    assert [(c["name"], c["args"]) for c in message.invalid_tool_calls] == [("add", "{a: 1")]
    # Merged chunks are parsed by langchain-core's lenient partial-JSON parser (for every chat
    # model), which reads "{a: 1" as {}; the arguments as sent stay in the chunks.
    merged = _merged(list(llm.stream("go")))
    assert [(c["name"], c["args"]) for c in merged.tool_call_chunks] == [("add", "{a: 1")]


@pytest.mark.parametrize(
    "fault",
    [Fault.status(500), Fault.connection_reset(), Fault.stream_cut(after=0), Fault.raw_stream()],
    ids=["500", "reset", "cut-before-first-token", "empty-stream"],
)
def test_a_stream_that_falls_over_reports_usage_once(
    llm: ChatPolicyRoute, fp: FakeProvider, fault: Any
) -> None:
    fp.set_default("fake-backup", Reply(text="from backup", usage=Usage(prompt=3, completion=2)))
    for api in ("sync", "async"):
        fp.script("fake-fast", fault)
        if api == "sync":
            chunks = list(llm.stream("go"))
        else:

            async def collect() -> list[AIMessageChunk]:
                return [chunk async for chunk in llm.astream("go")]

            chunks = asyncio.run(collect())
        with_usage = [c for c in chunks if c.usage_metadata]
        with_metadata = [c for c in chunks if "policyroute" in c.response_metadata]
        assert len(with_usage) == len(with_metadata) == 1, api
        assert with_usage[0] is with_metadata[0]
        assert with_usage[0].usage_metadata == {
            "input_tokens": 3,
            "output_tokens": 2,
            "total_tokens": 5,
        }
        assert with_metadata[0].response_metadata["policyroute"]["deployment"] == "backup"
        assert "".join(str(c.content) for c in chunks) == "from backup"


def test_a_stream_left_early_carries_no_usage_and_the_next_call_works(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.set_default("*", Reply(text="one two three four", usage=Usage(prompt=3, completion=4)))
    stream = llm.stream("go")
    first = next(stream)
    assert isinstance(stream, Generator)
    stream.close()
    assert first.usage_metadata is None
    assert llm.invoke("again").usage_metadata is not None


def test_batch_items_route_by_their_own_facts(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.set_default("*", Reply(text="ok"))
    configs: list[Any] = [
        {"metadata": {"task": "code"}},
        {"tags": ["other"]},
        {"tags": ["strong"]},
        {},
    ]
    expected = ["code", "default", "code", "default"]
    answers = llm.batch(["a", "b", "c", "d"], config=configs)
    assert [m.response_metadata["policyroute"]["route"] for m in answers] == expected
    answers = asyncio.run(llm.abatch(["a", "b", "c", "d"], config=configs))
    assert [m.response_metadata["policyroute"]["route"] for m in answers] == expected


def test_one_failing_batch_item_does_not_poison_the_others(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.set_default("fake-fast", Reply(text="ok"))
    fp.set_default("fake-strong", Fault.bad_request())
    configs: list[Any] = [{}, {"metadata": {"task": "code"}}, {}]
    for answers in (
        llm.batch(["a", "b", "c"], config=configs, return_exceptions=True),
        asyncio.run(llm.abatch(["a", "b", "c"], config=configs, return_exceptions=True)),
    ):
        assert [type(a).__name__ for a in answers] == ["AIMessage", "BadRequestError", "AIMessage"]
        assert isinstance(answers[1], BadRequestError)


def test_max_concurrency_is_honoured(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    # Each answer takes 0.5 s: one at a time, each request arrives after the answer before
    # it; all at once, every request arrives before the first answer could have ended.
    delay = 0.5
    fp.set_default("*", Fault.slow_first_token(delay, Reply(text="ok")))

    def arrivals() -> list[float]:
        times = [r.timestamp for r in fp.requests]
        fp.clear()
        assert len(times) == 3
        return times

    llm.batch(["a"] * 3, config={"max_concurrency": 1})
    times = arrivals()
    assert all(b - a >= delay for a, b in itertools.pairwise(times))
    asyncio.run(llm.abatch(["a"] * 3, config={"max_concurrency": 1}))
    times = arrivals()
    assert all(b - a >= delay for a, b in itertools.pairwise(times))
    asyncio.run(llm.abatch(["a"] * 3, config={"max_concurrency": 3}))
    times = arrivals()
    assert max(times) - min(times) < delay


def test_fallbacks_retry_and_bound_stop(
    llm: ChatPolicyRoute, fp: FakeProvider, make_policy: Any
) -> None:
    fp.set_default("fake-fast", Fault.bad_request())
    fp.set_default("fake-strong", Reply(text="strong"))
    strong = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting(), model="big")
    assert llm.with_fallbacks([strong]).invoke("go").content == "strong"
    fp.reset()
    fp.script("fake-fast", Fault.bad_request(), Reply(text="second"))
    retried = llm.with_retry(stop_after_attempt=2, wait_exponential_jitter=False)
    assert retried.invoke("go").content == "second"
    fp.reset()
    fp.set_default("*", Reply(text="ok"))
    llm.bind(stop=["END"]).invoke("go")
    list(llm.bind(stop=["HALT"]).stream("go"))
    stops = [r.body["stop"] for r in fp.requests if isinstance(r.body, dict)]
    assert stops == [["END"], ["HALT"]]
