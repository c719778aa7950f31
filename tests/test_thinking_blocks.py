"""Thinking blocks: kept with their origin, sent back only where their signature holds."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from policyroute._litellm import message_from_response
from policyroute._thinking import (
    FIRST_PARTY,
    ORIGIN_KEY,
    anthropic_format,
    has_thinking,
    messages_for,
    origin_of,
    signed_blocks,
)
from policyroute.langchain_.outbound import to_openai_messages
from policyroute.policy.model import ModelSpec

SIGNED = {"type": "thinking", "thinking": "let me look it up", "signature": "sig-1"}
REDACTED = {"type": "redacted_thinking", "data": "opaque"}


def spec(model: str, api_base: str | None = None, **params: Any) -> ModelSpec:
    return ModelSpec(alias="m", model=model, api_base=api_base, params=params)


@pytest.mark.parametrize(
    ("model", "api_base", "params", "origin"),
    [
        ("anthropic/claude-sonnet-4-5", None, {}, FIRST_PARTY),
        ("claude-3-7-sonnet-20250219", None, {}, FIRST_PARTY),
        ("anthropic/claude-sonnet-4-5", "https://api.anthropic.com/v1", {}, FIRST_PARTY),
        ("bedrock/us.anthropic.claude-sonnet-4-5-v1:0", None, {}, FIRST_PARTY),
        ("vertex_ai/claude-sonnet-4-5", None, {}, FIRST_PARTY),
        # An Anthropic-format endpoint of someone else: its signatures hold there only.
        ("anthropic/kimi-k2", "https://kimi.example", {}, "anthropic:https://kimi.example:kimi-k2"),
        ("anthropic/claude-x", "http://127.0.0.1:9", {}, "anthropic:http://127.0.0.1:9:claude-x"),
        ("openai/gpt-4o", None, {}, "openai::gpt-4o"),
        (
            "my-claude",
            "http://proxy",
            {"custom_llm_provider": "anthropic"},
            "anthropic:http://proxy:my-claude",
        ),
    ],
)
def test_origin_of(model: str, api_base: str | None, params: dict[str, Any], origin: str) -> None:
    assert origin_of(spec(model, api_base, **params)) == origin


def test_anthropic_format() -> None:
    assert anthropic_format(spec("anthropic/anything"))
    assert anthropic_format(spec("azure_ai/claude-sonnet-4-5"))
    assert not anthropic_format(spec("azure_ai/gpt-4o"))
    assert not anthropic_format(spec("openai/claude-lookalike"))
    assert not anthropic_format(spec("gemini/gemini-2.5-pro"))


def test_signed_blocks_keep_only_what_a_provider_can_check() -> None:
    raw = [
        SIGNED,
        {"type": "thinking", "thinking": "still streaming", "signature": None},
        {"type": "thinking", "thinking": "no signature"},
        REDACTED,
        {"type": "redacted_thinking", "data": ""},
        {"type": "text", "text": "not thinking"},
        "garbage",
    ]
    kept = signed_blocks(raw, "o")
    assert kept == [{**SIGNED, ORIGIN_KEY: "o"}, {**REDACTED, ORIGIN_KEY: "o"}]
    assert signed_blocks(raw, None) == [SIGNED, REDACTED]
    assert signed_blocks("not a list", "o") == []
    assert signed_blocks(None, "o") == []


def _turns(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "w"}}],
            "thinking_blocks": blocks,
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]


def test_blocks_go_back_to_their_origin_without_the_mark() -> None:
    turns = _turns(signed_blocks([SIGNED, REDACTED], FIRST_PARTY))
    sent = messages_for(turns, FIRST_PARTY, anthropic_format=True)
    assert sent[1]["thinking_blocks"] == [SIGNED, REDACTED]
    # Turns without blocks are not copied.
    assert sent[0] is turns[0]
    assert sent[2] is turns[2]
    # The call's own messages keep their marks, for the next attempt.
    assert turns[1]["thinking_blocks"][0][ORIGIN_KEY] == FIRST_PARTY


def test_other_deployments_get_the_turn_without_blocks() -> None:
    turns = _turns(signed_blocks([SIGNED], FIRST_PARTY))
    to_openai = messages_for(turns, "openai::gpt-4o", anthropic_format=False)
    assert "thinking_blocks" not in to_openai[1]
    assert to_openai[1]["tool_calls"] == turns[1]["tool_calls"]
    # Another Anthropic-format endpoint cannot check a first-party signature either.
    elsewhere = messages_for(turns, "anthropic:https://kimi.example:k", anthropic_format=True)
    assert "thinking_blocks" not in elsewhere[1]


def test_unmarked_blocks_go_to_every_anthropic_format_deployment() -> None:
    turns = _turns([SIGNED])
    assert messages_for(turns, "anthropic:http://x:m", anthropic_format=True)[1][
        "thinking_blocks"
    ] == [SIGNED]
    assert "thinking_blocks" not in messages_for(turns, "openai::m", anthropic_format=False)[1]


def test_has_thinking() -> None:
    assert has_thinking(_turns([SIGNED]))
    assert not has_thinking(_turns([]))
    assert not has_thinking([{"role": "user", "content": "hi"}])


def _response(blocks: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": "It is sunny.", "thinking_blocks": blocks}
    return {"id": "r1", "choices": [{"index": 0, "message": message}]}


def test_answer_keeps_signed_blocks_marked_with_their_origin() -> None:
    message = message_from_response(_response([SIGNED]), thinking_origin=FIRST_PARTY)
    assert message.additional_kwargs["thinking_blocks"] == [{**SIGNED, ORIGIN_KEY: FIRST_PARTY}]
    assert message.content == "It is sunny."
    bare = message_from_response(_response([{"type": "thinking", "thinking": "x"}]))
    assert "thinking_blocks" not in bare.additional_kwargs


def test_an_assistant_turn_is_sent_with_its_blocks() -> None:
    turn = AIMessage(
        "",
        tool_calls=[{"name": "w", "args": {"city": "Paris"}, "id": "t1"}],
        additional_kwargs={"thinking_blocks": [{**SIGNED, ORIGIN_KEY: FIRST_PARTY}]},
    )
    sent = to_openai_messages([HumanMessage("hi"), turn, ToolMessage("sunny", tool_call_id="t1")])
    assert sent[1]["thinking_blocks"] == [{**SIGNED, ORIGIN_KEY: FIRST_PARTY}]
    assert sent[1]["tool_calls"][0]["id"] == "t1"


def test_thinking_content_blocks_of_other_chat_models_are_sent_unmarked() -> None:
    # langchain-anthropic keeps thinking as content blocks.
    turn = AIMessage(
        [SIGNED, {"type": "text", "text": "Checking."}, {"type": "thinking", "thinking": "?"}],
        tool_calls=[{"name": "w", "args": {}, "id": "t1"}],
    )
    (sent,) = to_openai_messages([turn])
    assert sent["thinking_blocks"] == [SIGNED]
    assert sent["content"] == "Checking."


def test_a_turn_without_thinking_has_no_key() -> None:
    (sent,) = to_openai_messages([AIMessage("plain")])
    assert "thinking_blocks" not in sent
