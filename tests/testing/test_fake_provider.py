"""Tests of policyroute.testing.FakeProvider: wire formats, scripting, faults, litellm."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm
import openai

from policyroute.execution.classify import classify
from policyroute.testing import (
    ANY_MODEL,
    ConnectionReset,
    FakeProvider,
    Fault,
    MalformedBody,
    RecordedRequest,
    Reply,
    StatusFault,
    ToolCall,
    Usage,
    count_tokens,
    value_for_schema,
)

TIMEOUT = httpx.Timeout(2.0)
OPENAI_MAJOR = int(openai.__version__.split(".", 1)[0])
USER = [{"role": "user", "content": "What is the weather like in Paris today?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
LOOKUP_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT) as c:
        yield c


def chat(
    client: httpx.Client, fp: FakeProvider, model: str = "gpt-x", **extra: Any
) -> httpx.Response:
    body = {"model": model, "messages": USER, **extra}
    return client.post(fp.openai_base + "/chat/completions", json=body)


def messages(
    client: httpx.Client, fp: FakeProvider, model: str = "claude-x", **extra: Any
) -> httpx.Response:
    body = {"model": model, "max_tokens": 100, "messages": USER, **extra}
    return client.post(fp.anthropic_base + "/v1/messages", json=body)


def sse_data(lines: list[str]) -> list[str]:
    return [line[len("data: ") :] for line in lines if line.startswith("data: ")]


def stream_lines(
    client: httpx.Client, url: str, body: dict[str, Any], limit: int | None = None
) -> list[str]:
    """The non-empty lines of a streamed response (raises what the transport raises)."""
    lines: list[str] = []
    with client.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                lines.append(line)
            if limit is not None and len(lines) >= limit:
                break
    return lines


def openai_stream(client: httpx.Client, fp: FakeProvider, **extra: Any) -> list[str]:
    body = {"model": "gpt-x", "messages": USER, "stream": True, **extra}
    return sse_data(stream_lines(client, fp.openai_base + "/chat/completions", body))


def anthropic_stream(client: httpx.Client, fp: FakeProvider, **extra: Any) -> list[dict[str, Any]]:
    body = {"model": "claude-x", "max_tokens": 100, "messages": USER, "stream": True, **extra}
    lines = stream_lines(client, fp.anthropic_base + "/v1/messages", body)
    names = [line[len("event: ") :] for line in lines if line.startswith("event: ")]
    events = [json.loads(d) for d in sse_data(lines)]
    assert names == [e["type"] for e in events]
    return events


PROMPT_TOKENS = count_tokens(USER[0]["content"]) + 3  # 8 words + 3 per message


# --------------------------------------------------------------------------- lifecycle


def test_urls_and_context_manager() -> None:
    with FakeProvider() as fp:
        assert fp.running
        assert fp.base_url == f"http://127.0.0.1:{fp.port}"
        assert fp.openai_base == fp.base_url + "/v1"
        assert fp.anthropic_base == fp.base_url
        assert httpx.get(fp.base_url + "/health", timeout=TIMEOUT).json() == {"status": "ok"}
    assert not fp.running
    with pytest.raises(RuntimeError):
        _ = fp.port


def test_start_stop_restart_and_double_start() -> None:
    fp = FakeProvider().start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            fp.start()
        first = fp.port
    finally:
        fp.stop()
    fp.stop()  # idempotent
    fp.start()
    try:
        assert httpx.get(fp.base_url + "/health", timeout=TIMEOUT).status_code == 200
        assert fp.port > 0
        assert isinstance(first, int)
    finally:
        fp.stop()


def test_port_in_use_raises() -> None:
    with FakeProvider() as fp, pytest.raises(OSError, match=r"(?i)address already in use"):
        FakeProvider(port=fp.port).start()


def test_keep_alive_reuses_one_connection(fp: FakeProvider, client: httpx.Client) -> None:
    for _ in range(5):
        assert chat(client, fp).status_code == 200
    for _ in range(3):
        with client.stream(
            "POST", fp.openai_base + "/chat/completions", json={"model": "m", "stream": True}
        ) as r:
            r.read()
    assert {r.connection for r in fp.requests} == {1}


def test_stop_closes_stalled_connections_promptly() -> None:
    fp = FakeProvider().start()
    fp.script("gpt-x", Fault.no_response(), Fault.stall(after=1))
    errors: list[BaseException] = []

    def call(stream: bool) -> None:
        try:
            with httpx.Client(timeout=30) as c:
                if stream:
                    body = {"model": "gpt-x", "messages": USER, "stream": True}
                    stream_lines(c, fp.openai_base + "/chat/completions", body)
                else:
                    chat(c, fp)
        except httpx.HTTPError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(s,)) for s in (False, True)]
    for t in threads:
        t.start()
    fp.wait_for_requests(2, timeout=2)
    time.sleep(0.05)
    started = time.monotonic()
    fp.stop()
    for t in threads:
        t.join(5)
    assert time.monotonic() - started < 2
    assert not any(t.is_alive() for t in threads)
    assert len(errors) == 2


# --------------------------------------------------------------------------- OpenAI JSON


def test_openai_default_reply_wire_format(fp: FakeProvider, client: httpx.Client) -> None:
    r = chat(client, fp)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "gpt-x"
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    text = "Hello from fake-gpt-x: What is the weather like"
    assert choice["message"] == {
        "role": "assistant",
        "content": text,
        "refusal": None,
        "annotations": [],
    }
    assert body["usage"] == {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": count_tokens(text),
        "total_tokens": PROMPT_TOKENS + count_tokens(text),
    }


def test_openai_accepts_path_without_v1(fp: FakeProvider, client: httpx.Client) -> None:
    r = client.post(fp.base_url + "/chat/completions", json={"model": "m", "messages": USER})
    assert r.json()["object"] == "chat.completion"


def test_prompt_tokens_count_all_messages(fp: FakeProvider, client: httpx.Client) -> None:
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "one two three"}]},
        {"role": "assistant", "content": None},
    ]
    r = client.post(fp.openai_base + "/chat/completions", json={"model": "m", "messages": msgs})
    assert r.json()["usage"]["prompt_tokens"] == (2 + 3) + (3 + 3) + (0 + 3)
    assert r.json()["choices"][0]["message"]["content"] == "Hello from fake-m: one two three"


def test_openai_scripted_usage_details(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(
        "gpt-x", Reply(text="hi", usage=Usage(prompt=10, completion=3, cached=4, reasoning=2))
    )
    usage = chat(client, fp).json()["usage"]
    assert usage == {
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "total_tokens": 13,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


def test_openai_tool_calls_json(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")]))
    [choice] = chat(client, fp, tools=[WEATHER_TOOL]).json()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]


def test_openai_json_object_and_schema(fp: FakeProvider, client: httpx.Client) -> None:
    r = chat(client, fp, response_format={"type": "json_object"})
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == {
        "reply": "Hello from fake-gpt-x: What is the weather like"
    }
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 18},
            "score": {"type": "number"},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "kind": {"enum": ["a", "b"]},
            "when": {"type": "string", "format": "date-time"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
            "address": {"$ref": "#/$defs/Address"},
        },
        "required": ["name", "age", "address"],
        "additionalProperties": False,
        "$defs": {
            "Address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "zip": {"type": ["string", "null"]}},
                "required": ["street", "zip"],
            }
        },
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    value = json.loads(
        chat(client, fp, response_format=fmt).json()["choices"][0]["message"]["content"]
    )
    jsonschema.validate(value, schema)
    assert value["name"] == "x"
    assert value["age"] == 18
    assert value["score"] == 1.0
    assert value["tags"] == ["x"]
    assert value["kind"] == "a"
    assert value["address"] == {"street": "x", "zip": "x"}


def test_value_for_schema_edge_cases() -> None:
    assert value_for_schema({}) == "x"
    assert value_for_schema({"const": 7}) == 7
    assert value_for_schema({"type": "array", "items": {"type": "integer"}, "minItems": 2}) == [
        1,
        1,
    ]
    assert value_for_schema({"type": "integer", "maximum": 0}) == 0
    assert value_for_schema({"type": "string", "minLength": 3}) == "xxx"
    assert value_for_schema({"type": "null"}) is None


def test_openai_max_tokens_n_and_stop(fp: FakeProvider, client: httpx.Client) -> None:
    [choice] = chat(client, fp, max_tokens=3).json()["choices"]
    assert choice["message"]["content"] == "Hello from fake-gpt-x:"
    assert choice["finish_reason"] == "length"
    body = chat(client, fp, max_completion_tokens=100).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    body = chat(client, fp, n=3).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert len({c["message"]["content"] for c in body["choices"]}) == 1
    assert body["usage"]["completion_tokens"] == 3 * 8
    [choice] = chat(client, fp, stop=[" weather", ":"]).json()["choices"]
    assert choice["message"]["content"] == "Hello from fake-gpt-x"
    assert choice["finish_reason"] == "stop"
    fp.script("gpt-x", Reply(text="scripted text stays whole"))
    [choice] = chat(client, fp, max_tokens=1).json()["choices"]
    assert choice["message"]["content"] == "scripted text stays whole"


def test_openai_forced_tool_choice(fp: FakeProvider, client: httpx.Client) -> None:
    body = chat(client, fp, tools=[WEATHER_TOOL, LOOKUP_TOOL], tool_choice="required").json()
    [call] = body["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "x", "days": 1, "unit": "celsius"}
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    named = {"type": "function", "function": {"name": "lookup"}}
    body = chat(client, fp, tools=[WEATHER_TOOL, LOOKUP_TOOL], tool_choice=named).json()
    [call] = body["choices"][0]["message"]["tool_calls"]
    assert (call["function"]["name"], call["function"]["arguments"]) == ("lookup", '{"q": "x"}')
    body = chat(client, fp, tools=[WEATHER_TOOL], tool_choice="auto").json()
    assert "tool_calls" not in body["choices"][0]["message"]


# --------------------------------------------------------------------------- OpenAI SSE


def test_openai_stream_wire_format(fp: FakeProvider, client: httpx.Client) -> None:
    data = openai_stream(client, fp)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert all("usage" not in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Hello from fake-gpt-x: What is the weather like"
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_openai_stream_include_usage(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Reply(text="a b c", usage=Usage(prompt=11, completion=3, cached=5)))
    data = openai_stream(client, fp, stream_options={"include_usage": True})
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 3,
        "total_tokens": 14,
        "prompt_tokens_details": {"cached_tokens": 5},
    }


def test_openai_stream_tool_call_fragments(fp: FakeProvider, client: httpx.Client) -> None:
    args = {"city": "Paris", "days": 3}
    fp.script("gpt-x", Reply(tool_calls=[ToolCall("get_weather", args), ToolCall("lookup")]))
    chunks = [json.loads(d) for d in openai_stream(client, fp)[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    first = deltas[0]
    assert first["role"] == "assistant"
    assert first["content"] is None
    [head] = first["tool_calls"]
    assert head["index"] == 0
    assert head["id"].startswith("call_")
    assert head["function"] == {"name": "get_weather", "arguments": ""}
    fragments = [
        d["tool_calls"][0]["function"]["arguments"]
        for d in deltas
        if "tool_calls" in d and d["tool_calls"][0]["index"] == 0 and "id" not in d["tool_calls"][0]
    ]
    assert len(fragments) >= 2
    assert json.loads("".join(fragments)) == args
    second = [d for d in deltas if "tool_calls" in d and d["tool_calls"][0]["index"] == 1]
    assert second[0]["tool_calls"][0]["function"]["name"] == "lookup"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_stream_n_choices(fp: FakeProvider, client: httpx.Client) -> None:
    chunks = [json.loads(d) for d in openai_stream(client, fp, n=2)[:-1]]
    assert {c["choices"][0]["index"] for c in chunks} == {0, 1}


# --------------------------------------------------------------------------- Anthropic


def test_anthropic_json_wire_format(fp: FakeProvider, client: httpx.Client) -> None:
    r = messages(client, fp, system="You are terse.")
    assert r.status_code == 200
    body = r.json()
    text = "Hello from fake-claude-x: What is the weather like"
    assert body == {
        "id": body["id"],
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": PROMPT_TOKENS + 3 + 3,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": count_tokens(text),
        },
    }
    assert body["id"].startswith("msg_")


def test_anthropic_tool_use_and_usage(fp: FakeProvider, client: httpx.Client) -> None:
    usage = Usage(prompt=20, completion=7, cached=15, cache_creation=5)
    fp.script(
        "claude-x",
        Reply(
            text="Let me check.",
            tool_calls=[ToolCall("get_weather", {"city": "Paris"})],
            usage=usage,
        ),
    )
    body = messages(client, fp).json()
    assert body["stop_reason"] == "tool_use"
    text, tool = body["content"]
    assert text == {"type": "text", "text": "Let me check."}
    assert tool["type"] == "tool_use"
    assert tool["id"].startswith("toolu_")
    assert (tool["name"], tool["input"]) == ("get_weather", {"city": "Paris"})
    assert body["usage"] == {
        "input_tokens": 20,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 15,
        "output_tokens": 7,
    }


def test_anthropic_stream_events(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script(
        "claude-x",
        Reply(text="On it", tool_calls=[ToolCall("get_weather", {"city": "Paris", "days": 2})]),
    )
    events = anthropic_stream(client, fp)
    types = [e["type"] for e in events]
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    start = events[0]["message"]
    assert start["content"] == []
    assert set(start["usage"]) == {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    }
    blocks = [e for e in events if e["type"] == "content_block_start"]
    assert [b["content_block"]["type"] for b in blocks] == ["text", "tool_use"]
    assert blocks[1]["index"] == 1
    assert blocks[1]["content_block"]["name"] == "get_weather"
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    text = "".join(d["text"] for d in deltas if d["type"] == "text_delta")
    parts = [d["partial_json"] for d in deltas if d["type"] == "input_json_delta"]
    assert text == "On it"
    assert len(parts) >= 2
    assert json.loads("".join(parts)) == {"city": "Paris", "days": 2}
    assert [e["index"] for e in events if e["type"] == "content_block_stop"] == [0, 1]
    delta = events[-2]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] > 0


def test_anthropic_forced_tool_stop_sequences_and_schema(
    fp: FakeProvider, client: httpx.Client
) -> None:
    tool = {
        "name": "get_weather",
        "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
    }
    body = messages(client, fp, tools=[tool], tool_choice={"type": "any"}).json()
    assert body["stop_reason"] == "tool_use"
    assert body["content"][0]["input"] == {"city": "x", "days": 1, "unit": "celsius"}
    body = messages(client, fp, stop_sequences=["weather"]).json()
    assert body["content"][0]["text"] == "Hello from fake-claude-x: What is the "
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "weather")
    body = messages(client, fp, max_tokens=2).json()
    assert (body["content"][0]["text"], body["stop_reason"]) == ("Hello from", "max_tokens")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "schema": schema}
    body = messages(client, fp, output_format=fmt).json()
    assert json.loads(body["content"][0]["text"]) == {"n": 1}
    body = messages(client, fp, output_config={"format": fmt}).json()
    assert json.loads(body["content"][0]["text"]) == {"n": 1}


# --------------------------------------------------------------------------- scripting


def test_script_queue_defaults_and_wildcard(fp: FakeProvider, client: httpx.Client) -> None:
    def text(model: str) -> str:
        return str(chat(client, fp, model=model).json()["choices"][0]["message"]["content"])

    fp.script("a", Reply(text="a1"), Reply(text="a2"))
    fp.script(ANY_MODEL, Reply(text="any1"))
    fp.set_default("a", Reply(text="a-default"))
    fp.set_default("*", Reply(text="star-default"))
    assert fp.pending("a") == 2
    assert [text("a"), text("a"), text("a"), text("a")] == ["a1", "a2", "any1", "a-default"]
    assert text("b") == "star-default"
    fp.set_default("*", None)
    assert text("b") == "Hello from fake-b: What is the weather like"
    assert [r.source for r in fp.requests] == [
        "script",
        "script",
        "script",
        "default",
        "default",
        "auto",
    ]
    assert fp.requests[0].step == Reply(text="a1")
    assert fp.requests[-1].step is None
    fp.reset()
    assert text("a") == "Hello from fake-a: What is the weather like"
    assert len(fp.requests) == 1


def test_default_may_be_fault_and_reply_without_content(
    fp: FakeProvider, client: httpx.Client
) -> None:
    fp.set_default("gpt-x", Fault.status(500))
    assert chat(client, fp).status_code == 500
    fp.set_default("gpt-x", Reply(usage=Usage(cached=3), finish_reason="content_filter"))
    body = chat(client, fp).json()
    assert body["choices"][0]["message"]["content"].startswith("Hello from fake-gpt-x")
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 3}


def test_script_rejects_non_steps(fp: FakeProvider) -> None:
    with pytest.raises(TypeError):
        fp.script("m", "hello")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exactly one"):
        fp.schedule_outage("m")
    with pytest.raises(ValueError, match="4xx/5xx"):
        Fault.status(200)
    with pytest.raises(ValueError, match="prompt"):
        Usage(prompt=-1)


def test_reply_delay_and_chunk_delay(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Reply(text="a b c d", delay=0.2), Reply(text="a b c d", chunk_delay=0.05))
    started = time.monotonic()
    chat(client, fp)
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    openai_stream(client, fp)
    assert time.monotonic() - started >= 0.2


# --------------------------------------------------------------------------- outages


def test_outage_by_failure_count(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Reply(text="after"))
    fp.schedule_outage("gpt-x", failures=3, fault=Fault.status(502))
    assert [chat(client, fp).status_code for _ in range(3)] == [502, 502, 502]
    assert chat(client, fp).json()["choices"][0]["message"]["content"] == "after"
    assert [r.source for r in fp.requests] == ["outage"] * 3 + ["script"]
    assert fp.attempts("gpt-x") == 4


def test_outage_by_duration(fp: FakeProvider, client: httpx.Client) -> None:
    fp.schedule_outage("*", down_for=0.3)
    assert chat(client, fp).status_code == 503
    assert messages(client, fp).status_code == 503
    time.sleep(0.35)
    assert chat(client, fp).status_code == 200


# --------------------------------------------------------------------------- recording


def test_recording(fp: FakeProvider, client: httpx.Client) -> None:
    before = time.time()
    chat(client, fp, headers=None)
    client.post(
        fp.openai_base + "/chat/completions",
        json={"model": "other", "messages": USER},
        headers={"X-Custom": "Yes"},
    )
    requests = fp.requests
    assert len(requests) == 2
    first = requests[0]
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, first.model, first.api) == (
        "POST",
        "/v1/chat/completions",
        "gpt-x",
        "openai",
    )
    assert first.body["messages"] == USER
    assert before <= first.timestamp <= time.time()
    assert not first.stream
    assert requests[1].headers["x-custom"] == "Yes"
    assert requests[1].headers["content-type"] == "application/json"
    assert [r.model for r in fp.requests_for("other")] == ["other"]
    requests.clear()
    assert len(fp.requests) == 2
    assert fp.attempt_counts == {"gpt-x": 1, "other": 1}
    fp.clear()
    assert fp.requests == []
    assert fp.attempts("gpt-x") == 0


def test_max_recorded_and_wait_for_requests(client: httpx.Client) -> None:
    with FakeProvider(max_recorded=2) as fp:
        for model in ("a", "b", "c"):
            chat(client, fp, model=model)
        assert [r.model for r in fp.wait_for_requests(3, timeout=1)] == ["b", "c"]
        assert fp.attempt_counts == {"a": 1, "b": 1, "c": 1}
        with pytest.raises(TimeoutError, match="wanted 4"):
            fp.wait_for_requests(4, timeout=0.05)
        fp.clear()
        with pytest.raises(TimeoutError):
            fp.wait_for_requests(1, timeout=0.05)


def test_concurrent_requests_are_all_counted(fp: FakeProvider) -> None:
    async def run() -> list[int]:
        async with httpx.AsyncClient(timeout=TIMEOUT) as c:
            body = {"model": "gpt-x", "messages": USER}
            url = fp.openai_base + "/chat/completions"
            responses = await asyncio.gather(*(c.post(url, json=body) for _ in range(50)))
            return [r.status_code for r in responses]

    fp.script("gpt-x", *[Fault.status(429)] * 10)
    statuses = asyncio.run(run())
    assert sorted(statuses) == [200] * 40 + [429] * 10
    assert fp.attempts("gpt-x") == 50


def test_invalid_requests(fp: FakeProvider, client: httpx.Client) -> None:
    r = client.get(fp.openai_base + "/chat/completions")
    assert r.status_code == 405
    r = client.post(fp.base_url + "/v2/nothing", json={})
    assert r.status_code == 404
    assert "error" in r.json()
    r = client.post(fp.openai_base + "/chat/completions", content=b"{nope")
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = client.post(fp.anthropic_base + "/v1/messages", json=[1])
    assert (r.status_code, r.json()["type"]) == (400, "error")
    assert [x.source for x in fp.requests] == ["invalid"] * 4
    assert fp.attempt_counts == {}
    chat(client, fp, model="listed")
    assert client.get(fp.openai_base + "/models").json()["data"][0]["id"] == "listed"


def test_raw_http_chunked_body_and_http10() -> None:
    with FakeProvider() as fp, socket.create_connection(("127.0.0.1", fp.port), timeout=2) as s:
        payload = json.dumps({"model": "raw", "messages": USER}).encode()
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        )
        body = b"%x\r\n%b\r\n0\r\n\r\n" % (len(payload), payload)
        s.sendall(head + body)
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
        assert b"Hello from fake-raw" in data
        assert data.endswith(b'{"status":"ok"}')  # HTTP/1.0 without keep-alive: closed
        assert fp.requests[0].body["model"] == "raw"


# --------------------------------------------------------------------------- faults (raw)


@pytest.mark.parametrize(
    ("fault", "status", "retry_after", "error_type", "code"),
    [
        (Fault.status(429, retry_after=1.5), 429, "1.5", "requests", "rate_limit_exceeded"),
        (Fault.status(429, retry_after=2), 429, "2", "requests", "rate_limit_exceeded"),
        (Fault.status(500), 500, None, "server_error", None),
        (Fault.status(502), 502, None, "server_error", None),
        (Fault.status(503, retry_after=0), 503, "0", "server_error", None),
        (Fault.status(529), 529, None, "server_error", None),
        (Fault.status(401), 401, None, "invalid_request_error", "invalid_api_key"),
        (Fault.context_length(), 400, None, "invalid_request_error", "context_length_exceeded"),
        (Fault.content_filter(), 400, None, "invalid_request_error", "content_policy_violation"),
        (
            Fault.content_filter("content_filter"),
            400,
            None,
            "invalid_request_error",
            "content_filter",
        ),
        (
            Fault.bad_request("bad temperature", "temperature"),
            400,
            None,
            "invalid_request_error",
            None,
        ),
    ],
)
def test_openai_error_faults(
    fp: FakeProvider,
    client: httpx.Client,
    fault: Fault,
    status: int,
    retry_after: str | None,
    error_type: str,
    code: str | None,
) -> None:
    fp.script("gpt-x", fault)
    r = chat(client, fp)
    assert r.status_code == status
    assert r.headers.get("retry-after") == retry_after
    assert r.headers["x-request-id"].startswith("req_")
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == (error_type, code)
    assert error["message"]
    assert fp.requests[0].step == fault
    assert chat(client, fp).status_code == 200  # the connection stays usable


def test_openai_error_messages(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Fault.context_length(), Fault.status(503, message="custom"))
    assert "maximum context length is" in chat(client, fp).json()["error"]["message"]
    assert chat(client, fp).json()["error"]["message"] == "custom"


def test_a_status_fault_sends_the_body_it_is_given(fp: FakeProvider, client: httpx.Client) -> None:
    google = [{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": []}}]
    fp.script("gpt-x", Fault.status(429, body=google, headers={"x-extra": "1"}))
    fp.script("claude-x", Fault.status(503, body={"message": "down"}))
    r = chat(client, fp)
    assert (r.status_code, r.json(), r.headers["x-extra"]) == (429, google, "1")
    r = messages(client, fp)
    assert (r.status_code, r.json()) == (503, {"message": "down"})


def test_a_status_fault_body_must_be_json() -> None:
    with pytest.raises(ValueError, match=r"StatusFault\.body is not JSON"):
        StatusFault(429, body="{not json")
    with pytest.raises(TypeError, match="must be JSON text"):
        StatusFault(429, body={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not JSON serializable"):
        Fault.status(429, body=object())


@pytest.mark.parametrize(
    ("fault", "status", "error_type", "message_part"),
    [
        (Fault.status(529), 529, "overloaded_error", "Overloaded"),
        (Fault.status(429, retry_after=3), 429, "rate_limit_error", "rate limit"),
        (Fault.status(401), 401, "authentication_error", "x-api-key"),
        (Fault.status(500), 500, "api_error", "Internal"),
        (Fault.status(503), 503, "api_error", "Internal"),
        (Fault.context_length(), 400, "invalid_request_error", "prompt is too long"),
        (Fault.content_filter(), 400, "invalid_request_error", "content filtering"),
        (Fault.bad_request("nope"), 400, "invalid_request_error", "nope"),
    ],
)
def test_anthropic_error_faults(
    fp: FakeProvider,
    client: httpx.Client,
    fault: Fault,
    status: int,
    error_type: str,
    message_part: str,
) -> None:
    fp.script("claude-x", fault)
    r = messages(client, fp)
    assert r.status_code == status
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert message_part in body["error"]["message"]
    assert body["request_id"] == r.headers["request-id"]
    if isinstance(fault, StatusFault) and fault.retry_after is not None:
        assert r.headers["retry-after"] == "3"


def test_connection_reset(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Fault.connection_reset(), Fault.connection_reset())
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        chat(client, fp)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        openai_stream(client, fp)
    assert chat(client, fp).status_code == 200
    assert isinstance(fp.requests[0].step, ConnectionReset)


def test_no_response_times_out_client(fp: FakeProvider) -> None:
    fp.script("gpt-x", Fault.no_response())
    started = time.monotonic()
    with httpx.Client(timeout=0.3) as c, pytest.raises(httpx.ReadTimeout):
        chat(c, fp)
    assert time.monotonic() - started < 1.5
    assert fp.attempts("gpt-x") == 1


def test_no_response_closes_after_its_timeout(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Fault.no_response(timeout=0.2))
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client, fp)


def test_slow_first_token(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Fault.slow_first_token(0.3), Fault.slow_first_token(0.3, Reply(text="ok")))
    started = time.monotonic()
    assert chat(client, fp).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    data = openai_stream(client, fp)
    assert time.monotonic() - started >= 0.3
    assert json.loads(data[1])["choices"][0]["delta"]["content"] == "ok"
    fp.script("gpt-x", Fault.slow_first_token(1.0))
    with httpx.Client(timeout=0.2) as c, pytest.raises(httpx.ReadTimeout):
        chat(c, fp)


def test_stream_cut(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Fault.stream_cut(after=3))
    received: list[str] = []
    body = {"model": "gpt-x", "messages": USER, "stream": True}
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", fp.openai_base + "/chat/completions", json=body) as r,
    ):
        received.extend(line for line in r.iter_lines() if line)
    assert len(received) == 3
    assert "[DONE]" not in "".join(received)
    fp.script("gpt-x", Fault.stream_cut(after=0))
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client, fp)  # non-streaming: half a body, then close
    fp.script("claude-x", Fault.stream_cut(after=2))
    with pytest.raises(httpx.RemoteProtocolError):
        anthropic_stream(client, fp)


def test_stream_stall(fp: FakeProvider) -> None:
    fp.script("gpt-x", Fault.stall(after=2), Fault.stall(after=0))
    received: list[str] = []
    body = {"model": "gpt-x", "messages": USER, "stream": True}
    started = time.monotonic()
    with httpx.Client(timeout=0.3) as c:
        with (
            pytest.raises(httpx.ReadTimeout),
            c.stream("POST", fp.openai_base + "/chat/completions", json=body) as r,
        ):
            received.extend(line for line in r.iter_lines() if line)
        with pytest.raises(httpx.ReadTimeout):
            chat(c, fp)
    assert len(received) == 2
    assert time.monotonic() - started < 2


def test_malformed_chunk(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Fault.malformed_chunk(after=2, reply=Reply(text="a b c")))
    data = openai_stream(client, fp, stream_options={"include_usage": True})
    assert data[2] == "{not json"
    assert data[-1] == "[DONE]"
    good = [json.loads(d) for d in data[:-1] if d != "{not json"]
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in good if c["choices"])
        == "a b c"
    )
    assert good[-1]["usage"]["completion_tokens"] == 3
    fp.script("claude-x", Fault.malformed_chunk(after=1))
    lines = stream_lines(
        client,
        fp.anthropic_base + "/v1/messages",
        {"model": "claude-x", "max_tokens": 9, "messages": USER, "stream": True},
    )
    assert sse_data(lines)[1] == "{not json"
    assert sse_data(lines)[-1] == '{"type":"message_stop"}'


def test_missing_done(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Fault.missing_done())
    data = openai_stream(client, fp, stream_options={"include_usage": True})
    assert "[DONE]" not in data
    assert json.loads(data[-1])["usage"]["total_tokens"] > 0
    fp.script("claude-x", Fault.missing_done())
    events = anthropic_stream(client, fp)
    assert events[-1]["type"] == "message_delta"
    assert chat(client, fp).status_code == 200


def test_malformed_body(fp: FakeProvider, client: httpx.Client) -> None:
    fp.script("gpt-x", Fault.malformed_body())
    fp.script("claude-x", MalformedBody())
    r = chat(client, fp)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        r.json()
    with pytest.raises(json.JSONDecodeError):
        messages(client, fp).json()


# --------------------------------------------------------------------------- litellm


def _litellm_kwargs(fp: FakeProvider, provider: str = "openai") -> dict[str, Any]:
    base = fp.openai_base if provider == "openai" else fp.anthropic_base
    return {
        "api_base": base,
        "api_key": "sk-test",
        "num_retries": 0,
        "max_retries": 0,
        "timeout": 5,
    }


def test_litellm_openai_completion(fp: FakeProvider) -> None:
    response = litellm.completion(model="openai/fake-a", messages=USER, **_litellm_kwargs(fp))
    assert response.choices[0].message.content == "Hello from fake-fake-a: What is the weather like"
    assert response.usage.prompt_tokens == PROMPT_TOKENS
    assert response.usage.completion_tokens == 8
    [recorded] = fp.requests_for("fake-a")
    assert recorded.headers["authorization"] == "Bearer sk-test"


def test_litellm_openai_async_stream_tool_calls_and_usage(fp: FakeProvider) -> None:
    args = {"city": "Paris", "days": 3}
    usage = Usage(prompt=10, completion=3, cached=4, reasoning=1)
    fp.script(
        "fake-a", Reply(text="Checking", tool_calls=[ToolCall("get_weather", args)], usage=usage)
    )

    async def run() -> list[Any]:
        stream = await litellm.acompletion(
            model="openai/fake-a",
            messages=USER,
            tools=[WEATHER_TOOL],
            stream=True,
            stream_options={"include_usage": True},
            **_litellm_kwargs(fp),
        )
        return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    fragments = [
        c.choices[0].delta.tool_calls[0].function.arguments
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert len([f for f in fragments if f]) >= 2
    built = litellm.stream_chunk_builder(chunks)
    message = built.choices[0].message
    assert message.content == "Checking"
    [call] = message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == args
    assert built.choices[0].finish_reason == "tool_calls"
    usage_chunks = [c for c in chunks if getattr(c, "usage", None) is not None]
    final_usage = usage_chunks[-1].usage
    assert (final_usage.prompt_tokens, final_usage.completion_tokens) == (10, 3)
    assert final_usage.prompt_tokens_details.cached_tokens == 4
    assert final_usage.completion_tokens_details.reasoning_tokens == 1
    assert fp.requests[0].body["stream_options"] == {"include_usage": True}


def test_litellm_anthropic_completion(fp: FakeProvider) -> None:
    kwargs = _litellm_kwargs(fp, "anthropic")
    response = litellm.completion(model="anthropic/claude-haiku-4-5", messages=USER, **kwargs)
    assert response.choices[0].message.content.startswith("Hello from fake-claude-haiku-4-5:")
    assert response.usage.prompt_tokens == PROMPT_TOKENS
    [recorded] = fp.requests
    assert recorded.path == "/v1/messages"
    assert recorded.model == "claude-haiku-4-5"
    assert recorded.headers["x-api-key"] == "sk-test"


def test_litellm_anthropic_stream_tool_calls_and_usage(fp: FakeProvider) -> None:
    usage = Usage(prompt=10, completion=3, cached=4, cache_creation=2)
    call = ToolCall("get_weather", {"city": "Paris"})
    fp.script("claude-haiku-4-5", Reply(text="x y", tool_calls=[call], usage=usage))
    stream = litellm.completion(
        model="anthropic/claude-haiku-4-5",
        messages=USER,
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
        **_litellm_kwargs(fp, "anthropic"),
    )
    chunks = list(stream)
    built = litellm.stream_chunk_builder(chunks)
    message = built.choices[0].message
    assert message.content == "x y"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
    assert built.choices[0].finish_reason == "tool_calls"
    final = [c for c in chunks if getattr(c, "usage", None) is not None][-1].usage
    assert final.completion_tokens == 3
    assert final.prompt_tokens_details.cached_tokens == 4
    # litellm adds cache reads and writes to Anthropic's uncached input_tokens
    assert final.prompt_tokens == 10 + 4 + 2


def test_litellm_json_schema_default(fp: FakeProvider) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    for model, provider in (
        ("openai/fake-a", "openai"),
        ("anthropic/claude-haiku-4-5", "anthropic"),
    ):
        response = litellm.completion(
            model=model, messages=USER, response_format=fmt, **_litellm_kwargs(fp, provider)
        )
        assert json.loads(response.choices[0].message.content) == {"n": 1}


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.status(429, retry_after=1), litellm.RateLimitError),
        (Fault.status(503), litellm.ServiceUnavailableError),
        (Fault.status(500), litellm.InternalServerError),
        (Fault.status(401), litellm.AuthenticationError),
        (Fault.context_length(), litellm.ContextWindowExceededError),
        # litellm finds OpenAI's content-policy code in the SDK error's text; the openai SDK
        # from 3.0 leaves the body out of it, and litellm then raises the plain 400 (which
        # policyroute still classifies as content_policy, by the message).
        (
            Fault.content_filter(),
            litellm.ContentPolicyViolationError if OPENAI_MAJOR < 3 else litellm.BadRequestError,
        ),
        (Fault.bad_request("bad"), litellm.BadRequestError),
        (Fault.connection_reset(), litellm.InternalServerError),  # "Connection error."
        (Fault.malformed_body(), litellm.InternalServerError),
    ],
)
def test_litellm_openai_sees_faults(fp: FakeProvider, fault: Fault, error: type[Exception]) -> None:
    fp.script("fake-a", fault)
    with pytest.raises(error):
        litellm.completion(model="openai/fake-a", messages=USER, **_litellm_kwargs(fp))
    assert fp.attempts("fake-a") == 1


def test_a_content_filter_is_classified_as_content_policy(fp: FakeProvider) -> None:
    fp.script("fake-a", Fault.content_filter())
    with pytest.raises(litellm.BadRequestError) as caught:
        litellm.completion(model="openai/fake-a", messages=USER, **_litellm_kwargs(fp))
    assert classify(caught.value, deployment="a").error_class == "content_policy"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.status(529), litellm.InternalServerError),
        (Fault.status(429), litellm.RateLimitError),
        (Fault.context_length(), litellm.ContextWindowExceededError),
        (Fault.bad_request("bad"), litellm.BadRequestError),
    ],
)
def test_litellm_anthropic_sees_faults(
    fp: FakeProvider, fault: Fault, error: type[Exception]
) -> None:
    fp.script("claude-haiku-4-5", fault)
    with pytest.raises(error):
        litellm.completion(
            model="anthropic/claude-haiku-4-5", messages=USER, **_litellm_kwargs(fp, "anthropic")
        )
    assert fp.attempts("claude-haiku-4-5") == 1


def test_litellm_timeout_on_no_response(fp: FakeProvider) -> None:
    fp.script("fake-a", Fault.no_response())
    kwargs = {**_litellm_kwargs(fp), "timeout": 0.5}
    started = time.monotonic()
    with pytest.raises(litellm.Timeout):
        litellm.completion(model="openai/fake-a", messages=USER, **kwargs)
    assert time.monotonic() - started < 3
