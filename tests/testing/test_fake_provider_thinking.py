"""Extended thinking: scripted thinking blocks on both wires, through raw HTTP and litellm."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import litellm
import pytest

from policyroute.execution.loop_cleanup import close_litellm_clients_with_loop
from policyroute.testing import FakeProvider, Reply, ToolCall, Usage, default_signature

MODEL = "claude-sonnet-4-5"
USER = [{"role": "user", "content": "weather in Paris?"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
THINKING = {"type": "enabled", "budget_tokens": 1024}
PARIS = ToolCall("get_weather", {"city": "Paris"}, id="toolu_paris")


def anthropic_post(fp: FakeProvider, stream: bool = False) -> httpx.Response:
    body = {"model": MODEL, "max_tokens": 2048, "messages": USER, "stream": stream}
    return httpx.post(fp.anthropic_base + "/v1/messages", json=body, timeout=5)


def openai_post(fp: FakeProvider, stream: bool = False) -> httpx.Response:
    body = {"model": "gpt-r", "messages": USER, "stream": stream}
    return httpx.post(fp.openai_base + "/chat/completions", json=body, timeout=5)


def sse_objects(response: httpx.Response) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :])
        for line in response.text.splitlines()
        if line.startswith("data: {")
    ]


def litellm_call(fp: FakeProvider, messages: list[Any], **extra: Any) -> Any:
    return litellm.completion(
        model=f"anthropic/{MODEL}",
        messages=messages,
        tools=[TOOL],
        thinking=THINKING,
        api_base=fp.anthropic_base,
        api_key="sk-test",
        num_retries=0,
        max_retries=0,
        timeout=5,
        **extra,
    )


# Reply: the scripted fields


def test_a_single_thinking_string_is_one_block_with_a_derived_signature() -> None:
    reply = Reply(thinking="Let me check.")
    assert reply.thinking == "Let me check."
    assert reply.thinking_blocks == (("Let me check.", default_signature("Let me check.")),)
    assert default_signature("Let me check.").startswith("sig-")
    assert default_signature("Let me check.") != default_signature("Let me check!")
    assert not reply.is_content_scripted


def test_several_blocks_take_one_signature_each_or_a_shared_one() -> None:
    assert Reply(thinking=["a", "b"], signature=["s1", "s2"]).thinking_blocks == (
        ("a", "s1"),
        ("b", "s2"),
    )
    assert Reply(thinking=("a", "b"), signature="s").thinking_blocks == (("a", "s"), ("b", "s"))
    assert Reply(thinking=["a"]).thinking == ("a",)
    assert Reply().thinking_blocks == ()
    assert Reply(redacted_thinking=["x", "y"]).redacted_thinking == ("x", "y")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"thinking": ["a", "b"], "signature": ["s1"]}, ValueError, "1 signatures for 2"),
        ({"thinking": "a", "signature": ""}, ValueError, "must not be empty"),
        ({"thinking": ["a"], "signature": [""]}, ValueError, "must not be empty"),
        ({"thinking": ["a", 3]}, TypeError, "Reply.thinking must hold strings"),
        ({"redacted_thinking": "opaque"}, TypeError, "sequence of data strings"),
    ],
)
def test_inconsistent_thinking_is_refused(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Reply(**kwargs)


# Anthropic wire, raw


def test_anthropic_json_puts_thinking_then_redacted_before_text_and_tool_use(
    fp: FakeProvider,
) -> None:
    fp.script(
        MODEL,
        Reply(
            text="Checking.",
            tool_calls=[PARIS],
            thinking=["I need the weather.", "Call the tool."],
            signature=["sig-one", "sig-two"],
            redacted_thinking=["EmwKAhgB"],
        ),
    )
    body = anthropic_post(fp).json()
    assert body["content"] == [
        {"type": "thinking", "thinking": "I need the weather.", "signature": "sig-one"},
        {"type": "thinking", "thinking": "Call the tool.", "signature": "sig-two"},
        {"type": "redacted_thinking", "data": "EmwKAhgB"},
        {"type": "text", "text": "Checking."},
        {
            "type": "tool_use",
            "id": "toolu_paris",
            "name": "get_weather",
            "input": {"city": "Paris"},
        },
    ]
    assert body["stop_reason"] == "tool_use"
    # 4 + 3 thinking words, 1 text word, 1 + 2 for the call; redacted data is not counted.
    assert body["usage"]["output_tokens"] == 11


def test_anthropic_thinking_alone_still_answers_with_the_default_text(fp: FakeProvider) -> None:
    fp.script(MODEL, Reply(thinking="Hmm."))
    content = anthropic_post(fp).json()["content"]
    assert [block["type"] for block in content] == ["thinking", "text"]
    assert content[1]["text"].startswith(f"Hello from fake-{MODEL}")


def test_anthropic_scripted_completion_usage_wins_over_the_thinking_count(
    fp: FakeProvider,
) -> None:
    fp.script(MODEL, Reply(text="ok", thinking="a b c", usage=Usage(completion=50)))
    assert anthropic_post(fp).json()["usage"]["output_tokens"] == 50


def test_anthropic_stream_sends_thinking_blocks_first_and_shifts_later_indexes(
    fp: FakeProvider,
) -> None:
    fp.script(
        MODEL,
        Reply(
            text="On it.",
            tool_calls=[PARIS],
            thinking="Call the tool.",
            signature="sig-x",
            redacted_thinking=["EmwKAhgB"],
        ),
    )
    events = sse_objects(anthropic_post(fp, stream=True))
    shape = []
    for event in events:
        if event["type"] == "content_block_start":
            shape.append(("start", event["index"], event["content_block"]))
        elif event["type"] == "content_block_delta":
            shape.append(("delta", event["index"], event["delta"]))
        elif event["type"] == "content_block_stop":
            shape.append(("stop", event["index"], None))
    tool_start = {"type": "tool_use", "id": "toolu_paris", "name": "get_weather", "input": {}}
    assert shape[:9] == [
        ("start", 0, {"type": "thinking", "thinking": ""}),
        ("delta", 0, {"type": "thinking_delta", "thinking": "Call"}),
        ("delta", 0, {"type": "thinking_delta", "thinking": " the"}),
        ("delta", 0, {"type": "thinking_delta", "thinking": " tool."}),
        ("delta", 0, {"type": "signature_delta", "signature": "sig-x"}),
        ("stop", 0, None),
        ("start", 1, {"type": "redacted_thinking", "data": "EmwKAhgB"}),
        ("stop", 1, None),
        ("start", 2, {"type": "text", "text": ""}),
    ]
    assert ("start", 3, tool_start) in shape
    assert {index for _, index, _ in shape[9:]} == {2, 3}
    assert [e["type"] for e in events].count("ping") == 1
    assert events[2]["type"] == "ping"  # right after the first block starts
    assert events[-2]["type"] == "message_delta"
    assert events[-2]["usage"] == {"output_tokens": 3 + 2 + 1 + 2}


# OpenAI wire, raw


def test_openai_json_sends_thinking_as_reasoning_content_without_signature(
    fp: FakeProvider,
) -> None:
    fp.script("gpt-r", Reply(text="Sunny.", thinking=["Look it up. ", "Done."]))
    response = openai_post(fp)
    body = response.json()
    assert body["choices"][0]["message"]["reasoning_content"] == "Look it up. Done."
    assert body["choices"][0]["message"]["content"] == "Sunny."
    assert "sig-" not in response.text
    assert body["usage"]["completion_tokens"] == 1 + 4
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 4}


def test_openai_reply_without_thinking_keeps_its_shape(fp: FakeProvider) -> None:
    fp.script("gpt-r", Reply(text="Sunny."))
    body = openai_post(fp).json()
    assert "reasoning_content" not in body["choices"][0]["message"]
    assert "completion_tokens_details" not in body["usage"]


def test_openai_stream_sends_reasoning_deltas_before_content(fp: FakeProvider) -> None:
    fp.script("gpt-r", Reply(text="Sunny now.", thinking="Look it up.", usage=Usage(reasoning=9)))
    deltas = [e["choices"][0]["delta"] for e in sse_objects(openai_post(fp, stream=True))]
    assert deltas[0] == {"role": "assistant", "content": "", "refusal": None}
    assert deltas[1:-1] == [
        {"reasoning_content": "Look"},
        {"reasoning_content": " it"},
        {"reasoning_content": " up."},
        {"content": "Sunny"},
        {"content": " now."},
    ]


# Through litellm


def test_litellm_message_carries_signed_thinking_blocks_and_reasoning(fp: FakeProvider) -> None:
    fp.script(
        MODEL,
        Reply(tool_calls=[PARIS], thinking="I need the weather.", redacted_thinking=["EmwK"]),
    )
    response = litellm_call(fp, USER)
    message = response.choices[0].message
    assert message.thinking_blocks == [
        {
            "type": "thinking",
            "thinking": "I need the weather.",
            "signature": default_signature("I need the weather."),
        },
        {"type": "redacted_thinking", "data": "EmwK"},
    ]
    assert message.reasoning_content == "I need the weather."
    assert message.tool_calls[0].function.name == "get_weather"
    assert response.usage.completion_tokens == 4 + 1 + 2
    assert response.usage.completion_tokens_details.reasoning_tokens > 0


def test_litellm_stream_chunks_carry_thinking_deltas_then_the_signature(
    fp: FakeProvider,
) -> None:
    fp.script(MODEL, Reply(tool_calls=[PARIS], thinking="Think hard now.", signature="sig-s"))
    chunks = list(litellm_call(fp, USER, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = [d.reasoning_content for d in deltas if getattr(d, "reasoning_content", None)]
    assert reasoning == ["Think", " hard", " now."]
    signed = [
        block["signature"]
        for d in deltas
        for block in getattr(d, "thinking_blocks", None) or []
        if block.get("signature")
    ]
    assert signed == ["sig-s"]
    built = litellm.stream_chunk_builder(chunks, messages=USER)
    message = built.choices[0].message
    assert message.thinking_blocks == [
        {"type": "thinking", "thinking": "Think hard now.", "signature": "sig-s"}
    ]
    assert message.reasoning_content == "Think hard now."
    assert message.tool_calls[0].id == "toolu_paris"


def test_litellm_async_stream_gets_the_same_thinking(fp: FakeProvider) -> None:
    fp.script(MODEL, Reply(text="Sunny.", thinking="Async thought."))

    async def collect() -> list[Any]:
        # litellm keeps the aiohttp session of its Anthropic streams past this loop; closed
        # with the loop, as policyroute's own calls have it, instead of by the collector.
        await close_litellm_clients_with_loop()
        stream = await litellm.acompletion(
            model=f"anthropic/{MODEL}",
            messages=USER,
            thinking=THINKING,
            stream=True,
            api_base=fp.anthropic_base,
            api_key="sk-test",
            num_retries=0,
            max_retries=0,
            timeout=5,
        )
        return [chunk async for chunk in stream]

    built = litellm.stream_chunk_builder(asyncio.run(collect()), messages=USER)
    message = built.choices[0].message
    assert message.reasoning_content == "Async thought."
    assert message.thinking_blocks[0]["signature"] == default_signature("Async thought.")
    assert message.content == "Sunny."


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_thinking_sent_back_is_recorded_before_the_tool_use(fp: FakeProvider, stream: bool) -> None:
    fp.script(
        MODEL,
        Reply(tool_calls=[PARIS], thinking="I need the weather."),
        Reply(text="Sunny in Paris."),
    )
    first = litellm_call(fp, USER, stream=stream)
    if stream:
        first = litellm.stream_chunk_builder(list(first), messages=USER)
    assistant = first.choices[0].message
    history = [
        *USER,
        assistant.model_dump(),
        {"role": "tool", "tool_call_id": "toolu_paris", "content": "sunny"},
    ]
    second = litellm_call(fp, history)
    assert second.choices[0].message.content == "Sunny in Paris."
    recorded = fp.requests_for(MODEL)
    assert recorded[0].assistant_blocks == []
    (turn,) = recorded[1].assistant_blocks
    # A message rebuilt from a stream has content "", which litellm up to 1.106 sends back as
    # a placeholder text block between the thinking and the tool_use (1.108 and later don't).
    kept = [block for block in turn if block["type"] != "text"]
    assert [block["type"] for block in kept] == ["thinking", "tool_use"]
    assert turn[0] == {
        "type": "thinking",
        "thinking": "I need the weather.",
        "signature": default_signature("I need the weather."),
    }
    assert kept[1]["id"] == "toolu_paris"
    assert len(turn) - len(kept) <= (1 if stream else 0)
    assert recorded[1].body["thinking"] == THINKING


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_litellm_openai_wire_gives_reasoning_content_without_thinking_blocks(
    fp: FakeProvider, stream: bool
) -> None:
    fp.script("gpt-r", Reply(text="Sunny.", thinking="Look it up."))
    response = litellm.completion(
        model="openai/gpt-r",
        messages=USER,
        stream=stream,
        api_base=fp.openai_base,
        api_key="sk-test",
        num_retries=0,
        max_retries=0,
        timeout=5,
    )
    if stream:
        response = litellm.stream_chunk_builder(list(response), messages=USER)
    message = response.choices[0].message
    assert message.reasoning_content == "Look it up."
    assert message.content == "Sunny."
    assert not getattr(message, "thinking_blocks", None)


def test_assistant_blocks_normalise_string_and_missing_content(fp: FakeProvider) -> None:
    body = {
        "model": "gpt-r",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "plain"},
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "assistant", "content": [{"type": "text", "text": "x"}, "junk"]},
        ],
    }
    httpx.post(fp.openai_base + "/chat/completions", json=body, timeout=5)
    assert fp.requests[0].assistant_blocks == [
        [{"type": "text", "text": "plain"}],
        [],
        [{"type": "text", "text": "x"}],
    ]
