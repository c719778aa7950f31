"""The pure LangChain <-> litellm conversions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from litellm.types.utils import ModelResponse, ModelResponseStream

from policyroute._litellm import (
    chunk_to_message,
    finish_reason_of,
    jsonable,
    message_from_response,
    tool_calls_from_openai,
    usage_metadata,
)
from policyroute.errors import RequestError
from policyroute.execution.hooks import Usage
from policyroute.langchain_.outbound import (
    to_openai_content,
    to_openai_message,
    to_openai_messages,
    tool_choice_param,
)


def test_plain_roles() -> None:
    msgs = [
        SystemMessage("sys"),
        HumanMessage("hi", name="ann"),
        AIMessage("hello"),
        ChatMessage(role="developer", content="dev"),
    ]
    assert to_openai_messages(msgs) == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi", "name": "ann"},
        {"role": "assistant", "content": "hello"},
        {"role": "developer", "content": "dev"},
    ]


def test_ai_with_tool_calls_and_empty_content() -> None:
    ai = AIMessage(
        "",
        tool_calls=[{"name": "add", "args": {"a": 1, "b": "é"}, "id": "c1"}],
        invalid_tool_calls=[{"name": "bad", "args": "{oops", "id": "c2", "error": "x"}],
    )
    out = to_openai_message(ai)
    assert out["content"] is None
    assert out["tool_calls"] == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 1, "b": "é"}'},
        },
        {"id": "c2", "type": "function", "function": {"name": "bad", "arguments": "{oops"}},
    ]


def test_ai_content_blocks_keep_only_text() -> None:
    ai = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "hmm"},
            {"type": "text", "text": "a"},
            "b",
            {"type": "tool_call", "name": "f", "args": {}, "id": "1"},
        ]
    )
    assert to_openai_message(ai) == {"role": "assistant", "content": "ab"}


def test_tool_message() -> None:
    out = to_openai_message(ToolMessage("42", tool_call_id="c1"))
    assert out == {"role": "tool", "tool_call_id": "c1", "content": "42"}


@pytest.mark.parametrize(
    ("block", "url"),
    [
        ({"type": "image", "url": "https://x/a.png"}, "https://x/a.png"),
        (
            {"type": "image", "base64": "AAA", "mime_type": "image/jpeg"},
            "data:image/jpeg;base64,AAA",
        ),
        (
            {"type": "image", "source_type": "base64", "data": "BBB", "mime_type": "image/png"},
            "data:image/png;base64,BBB",
        ),
        ({"type": "image", "source_type": "url", "data": "https://y"}, "https://y"),
        ({"type": "image_url", "image_url": "https://z"}, "https://z"),
        ({"type": "image_url", "image_url": {"url": "https://w", "detail": "low"}}, "https://w"),
    ],
)
def test_image_blocks_become_image_url(block: dict[str, object], url: str) -> None:
    parts = to_openai_content([{"type": "text", "text": "see"}, block])
    assert parts[0] == {"type": "text", "text": "see"}
    assert parts[1]["type"] == "image_url"
    assert parts[1]["image_url"]["url"] == url


def test_file_and_audio_blocks() -> None:
    parts = to_openai_content(
        [
            {"type": "file", "base64": "PDF", "mime_type": "application/pdf"},
            {"type": "audio", "base64": "WAV", "mime_type": "audio/wav"},
        ]
    )
    assert parts == [
        {
            "type": "file",
            "file": {"filename": "document", "file_data": "data:application/pdf;base64,PDF"},
        },
        {"type": "input_audio", "input_audio": {"data": "WAV", "format": "wav"}},
    ]


def test_unknown_block_is_a_request_error() -> None:
    with pytest.raises(RequestError, match="hologram"):
        to_openai_content([{"type": "hologram"}])


@pytest.mark.parametrize(
    ("choice", "names", "expected"),
    [
        ("any", ["a", "b"], "required"),
        ("auto", ["a"], "auto"),
        ("none", ["a"], "none"),
        ("required", ["a"], "required"),
        ("b", ["a", "b"], {"type": "function", "function": {"name": "b"}}),
        (True, ["a", "b"], "required"),
        (True, ["a"], {"type": "function", "function": {"name": "a"}}),
        (False, ["a"], None),
        (None, ["a"], None),
    ],
)
def test_tool_choice_mapping(choice: object, names: list[str], expected: object) -> None:
    assert tool_choice_param(choice, names) == expected


def test_tool_choice_unknown_name() -> None:
    with pytest.raises(RequestError, match="names no bound tool"):
        tool_choice_param("nope", ["a"])


def test_tool_calls_valid_invalid_and_non_object() -> None:
    ok, bad = tool_calls_from_openai(
        [
            {"id": "1", "function": {"name": "f", "arguments": '{"x": [1]}'}},
            {"id": "2", "function": {"name": "g", "arguments": ""}},
            {"id": "3", "function": {"name": "h", "arguments": "{no"}},
            {"id": "4", "function": {"name": "i", "arguments": "[1]"}},
        ]
    )
    assert [(c["name"], c["args"], c["id"]) for c in ok] == [("f", {"x": [1]}, "1"), ("g", {}, "2")]
    assert [(c["name"], c["args"]) for c in bad] == [("h", "{no"), ("i", "[1]")]
    assert all(c["error"] for c in bad)


def test_usage_metadata_only_known_details() -> None:
    assert usage_metadata(Usage(5, 2)) == {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    full = usage_metadata(
        Usage(10, 8, cache_read_tokens=3, cache_write_tokens=2, reasoning_tokens=4)
    )
    assert full["input_token_details"] == {"cache_read": 3, "cache_creation": 2}
    assert full["output_token_details"] == {"reasoning": 4}
    assert full["total_tokens"] == 18


def test_message_from_litellm_response() -> None:
    response = ModelResponse(
        id="r1",
        choices=[
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 2}'},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{"},
                        },
                    ],
                },
            }
        ],
    )
    finish = finish_reason_of(response)
    message = message_from_response(response)
    assert finish == "tool_calls"
    assert message.content == ""
    assert message.tool_calls == [{"name": "f", "args": {"a": 2}, "id": "c1", "type": "tool_call"}]
    assert message.invalid_tool_calls[0]["args"] == "{"


def test_stream_chunks_merge_into_tool_calls() -> None:
    raw = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi "}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "add", "arguments": '{"a"'},
                            }
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]},
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    merged: AIMessageChunk | None = None
    finishes = []
    for data in raw:
        message, finish = chunk_to_message(ModelResponseStream(**data))
        finishes.append(finish)
        if message is not None:
            merged = message if merged is None else merged + message
    assert merged is not None
    merged = merged + AIMessageChunk(content="", chunk_position="last")
    assert merged.content == "Hi "
    assert merged.tool_calls == [{"name": "add", "args": {"a": 1}, "id": "c1", "type": "tool_call"}]
    assert finishes[-1] == "tool_calls"


def test_jsonable() -> None:
    assert jsonable({"c": Decimal("1.50"), "u": Usage(1, 2), "e": ValueError("x")}) == {
        "c": "1.50",
        "u": {
            "input_tokens": 1,
            "output_tokens": 2,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "cache_write_1h_tokens": 0,
        },
        "e": "ValueError: x",
    }
