"""LangChain messages and tools going out: Anthropic-format blocks, tool results in a human
turn, and prompt-cache marks, from the conversion up to what the provider receives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ChatMessage, HumanMessage, SystemMessage

from policyroute.errors import RequestError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.outbound import (
    to_openai_content,
    to_openai_message,
    to_openai_messages,
    to_openai_tool,
)
from policyroute.testing import FakeProvider, Reply

EPHEMERAL = {"type": "ephemeral"}
PNG = "iVBORw0KGgo="


# --------------------------------------------------------------------------- content blocks


@pytest.mark.parametrize(
    ("block", "part"),
    [
        (
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/jpeg", "data": "J"},
            },
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,J"}},
        ),
        (
            {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
            {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
        ),
        (
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
            {"type": "file", "file": {"file_id": "file_1", "format": "image/png"}},
        ),
        (
            {
                "type": "document",
                "title": "q3.pdf",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "P"},
            },
            {
                "type": "file",
                "file": {"filename": "q3.pdf", "file_data": "data:application/pdf;base64,P"},
            },
        ),
        (
            {"type": "document", "source": {"type": "url", "url": "https://x/d.pdf"}},
            {"type": "file", "file": {"filename": "document", "file_data": "https://x/d.pdf"}},
        ),
        (
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "T"},
            },
            {"type": "text", "text": "T"},
        ),
        (
            {
                "type": "file",
                "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,P"},
            },
            {
                "type": "file",
                "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,P"},
            },
        ),
        (
            {"type": "image", "file_id": "file_2"},
            {"type": "file", "file": {"file_id": "file_2"}},
        ),
    ],
)
def test_anthropic_and_openai_blocks(block: dict[str, Any], part: dict[str, Any]) -> None:
    assert to_openai_content([block]) == [part]


def test_cache_control_is_kept_on_every_kind_of_part() -> None:
    parts = to_openai_content(
        [
            {"type": "text", "text": "long context", "cache_control": EPHEMERAL},
            {"type": "image", "url": "https://x/a.png", "extras": {"cache_control": EPHEMERAL}},
            {
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "P"},
                "cache_control": EPHEMERAL,
            },
            {"type": "text", "text": "question"},
        ]
    )
    assert [p.get("cache_control") for p in parts] == [EPHEMERAL, EPHEMERAL, EPHEMERAL, None]


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"type": "image", "mime_type": "image/png"}, "image block has no data"),
        ({"type": "file", "mime_type": "application/pdf"}, "file block has no data"),
        ({"type": "audio", "url": "https://x/a.wav"}, "audio block has no base64 data"),
        ({"type": "image", "source": {"type": "base64"}}, "unsupported source"),
        ({"type": "image", "source": "nope"}, "source must be an object"),
        ({"type": "image", "source": {"type": "text", "data": "T"}}, "not an image"),
    ],
)
def test_blocks_without_usable_data_are_request_errors(block: dict[str, Any], match: str) -> None:
    # Sending "data:image/png;base64,None" would cost a provider round trip and fail there.
    with pytest.raises(RequestError, match=match):
        to_openai_content([block])


def test_assistant_text_stays_a_string_unless_a_part_is_marked_for_caching() -> None:
    plain = AIMessage([{"type": "text", "text": "a"}, {"type": "tool_use", "id": "t", "name": "f"}])
    assert to_openai_message(plain)["content"] == "a"
    marked = AIMessage(
        [
            {"type": "text", "text": "earlier answer", "cache_control": EPHEMERAL},
            {"type": "thinking", "thinking": "..."},
            {"type": "text", "text": ""},
        ]
    )
    assert to_openai_message(marked)["content"] == [
        {"type": "text", "text": "earlier answer", "cache_control": EPHEMERAL}
    ]


# --------------------------------------------------------------------------- tool results


def test_tool_results_in_a_human_turn_become_tool_messages_before_the_rest() -> None:
    ai = AIMessage(
        "",
        tool_calls=[{"id": "t1", "name": "f", "args": {}}, {"id": "t2", "name": "g", "args": {}}],
    )
    turn = HumanMessage(
        [
            {"type": "tool_result", "tool_use_id": "t1", "content": "red"},
            {
                "type": "tool_result",
                "tool_use_id": "t2",
                "content": [{"type": "text", "text": "blue"}],
            },
            {"type": "text", "text": "which is warmer?"},
        ],
        name="ann",
    )
    out = to_openai_messages([HumanMessage("colours?"), ai, turn])
    assert [m["role"] for m in out] == ["user", "assistant", "tool", "tool", "user"]
    assert out[2] == {"role": "tool", "tool_call_id": "t1", "content": "red"}
    assert out[3] == {
        "role": "tool",
        "tool_call_id": "t2",
        "content": [{"type": "text", "text": "blue"}],
    }
    assert out[4] == {
        "role": "user",
        "content": [{"type": "text", "text": "which is warmer?"}],
        "name": "ann",
    }


def test_a_turn_of_only_tool_results_adds_no_empty_user_message() -> None:
    turn = HumanMessage([{"type": "tool_result", "tool_use_id": "t1"}])
    assert to_openai_messages([turn]) == [{"role": "tool", "tool_call_id": "t1", "content": ""}]


def test_tool_result_errors() -> None:
    with pytest.raises(RequestError, match="without a tool_use_id"):
        to_openai_messages([HumanMessage([{"type": "tool_result", "content": "x"}])])
    with pytest.raises(RequestError, match="content must be text or a list"):
        to_openai_messages(
            [HumanMessage([{"type": "tool_result", "tool_use_id": "t", "content": 3}])]
        )
    with pytest.raises(RequestError, match="use to_openai_messages"):
        to_openai_message(HumanMessage([{"type": "tool_result", "tool_use_id": "t"}]))


# --------------------------------------------------------------------------- tools


def test_tool_dicts_keep_their_cache_mark() -> None:
    anthropic = {
        "name": "pick",
        "description": "Pick a colour.",
        "input_schema": {"type": "object", "properties": {"c": {"type": "string"}}},
        "cache_control": EPHEMERAL,
    }
    tool = to_openai_tool(anthropic)
    assert tool["function"]["name"] == "pick"
    assert tool["function"]["parameters"]["properties"] == {"c": {"type": "string"}}
    assert tool["cache_control"] == EPHEMERAL
    assert "cache_control" not in to_openai_tool({**anthropic, "cache_control": None})


# --------------------------------------------------------------------------- on the wire


POLICY = """
policyroute: 1
name: outbound
models:
  claude:
    model: anthropic/claude-sonnet-4-5-20250929
    api_base: {anthropic}
    api_key: ${{POLICYROUTE_TEST_KEY}}
  gpt:
    model: openai/gpt-4o-mini
    api_base: {openai}
    api_key: ${{POLICYROUTE_TEST_KEY}}
routes:
  - name: openai
    when: {{tags: {{contains: openai}}}}
    to: gpt
  - name: default
    to: claude
defaults:
  max_tokens: 256
receipts: {{sink: none}}
"""

PICK = {
    "name": "pick",
    "description": "Pick a colour.",
    "input_schema": {"type": "object", "properties": {"c": {"type": "string"}}},
    "cache_control": EPHEMERAL,
}

CONVERSATION = [
    SystemMessage([{"type": "text", "text": "You pick colours.", "cache_control": EPHEMERAL}]),
    HumanMessage(
        [
            {"type": "text", "text": "A long shared context.", "cache_control": EPHEMERAL},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ]
    ),
    AIMessage(
        [
            {"type": "text", "text": "Let me pick."},
            {"type": "tool_use", "id": "t1", "name": "pick", "input": {"c": "red"}},
        ],
        tool_calls=[{"id": "t1", "name": "pick", "args": {"c": "red"}}],
    ),
    HumanMessage(
        [
            {"type": "tool_result", "tool_use_id": "t1", "content": "red picked"},
            {"type": "text", "text": "And now?"},
        ]
    ),
]


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="blue"))
        yield fp


def _model(fp: FakeProvider) -> ChatPolicyRoute:
    text = POLICY.format(anthropic=fp.anthropic_base, openai=fp.openai_base)
    return ChatPolicyRoute(policy=text, accounting=NullAccounting())


def test_anthropic_receives_the_conversation_with_its_cache_marks(provider: FakeProvider) -> None:
    answer = _model(provider).bind_tools([PICK]).invoke(CONVERSATION)
    assert answer.content == "blue"
    body = provider.requests[-1].body
    assert provider.requests[-1].api == "anthropic"
    assert body["system"] == [
        {"type": "text", "text": "You pick colours.", "cache_control": EPHEMERAL}
    ]
    first, reply, results = body["messages"]
    assert first["content"][0] == {
        "type": "text",
        "text": "A long shared context.",
        "cache_control": EPHEMERAL,
    }
    assert first["content"][1]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": PNG,
    }
    assert reply["content"][1] == {
        "type": "tool_use",
        "id": "t1",
        "name": "pick",
        "input": {"c": "red"},
    }
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "red picked"},
            {"type": "text", "text": "And now?"},
        ],
    }
    assert body["tools"][0]["name"] == "pick"
    assert body["tools"][0]["cache_control"] == EPHEMERAL


@pytest.mark.asyncio
async def test_openai_compatible_endpoint_receives_tool_messages_in_order(
    provider: FakeProvider,
) -> None:
    answer = (
        await _model(provider).bind_tools([PICK]).ainvoke(CONVERSATION, config={"tags": ["openai"]})
    )
    assert answer.content == "blue"
    request = provider.requests[-1]
    assert request.api == "openai"
    roles = [m["role"] for m in request.body["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert request.body["messages"][3] == {
        "role": "tool",
        "tool_call_id": "t1",
        "content": "red picked",
    }
    assert request.body["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG}"},
    }


# --------------------------------------------------------------------------- agent-loop turns


def test_a_cache_mark_on_a_tool_result_goes_on_the_tool_message() -> None:
    turn = HumanMessage(
        [
            {
                "type": "tool_result",
                "tool_use_id": "t1",
                "content": "42",
                "cache_control": EPHEMERAL,
            },
            {"type": "text", "text": ""},
        ]
    )
    assert to_openai_messages([turn]) == [
        {"role": "tool", "tool_call_id": "t1", "content": "42", "cache_control": EPHEMERAL}
    ]


def test_anthropic_tool_use_blocks_stand_for_missing_tool_calls() -> None:
    ai = AIMessage(
        [
            {"type": "text", "text": "Checking."},
            {
                "type": "tool_use",
                "id": "t1",
                "name": "get_weather",
                "input": {"city": "Paris"},
                "cache_control": EPHEMERAL,
            },
        ]
    )
    out = to_openai_message(ai)
    assert out["content"] == "Checking."
    assert out["tool_calls"] == [
        {
            "id": "t1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            "cache_control": EPHEMERAL,
        }
    ]


def test_tool_calls_win_over_tool_use_blocks_but_keep_their_marks() -> None:
    ai = AIMessage(
        [{"type": "tool_use", "id": "t1", "name": "f", "input": {}, "cache_control": EPHEMERAL}],
        tool_calls=[{"id": "t1", "name": "f", "args": {"x": 1}}],
    )
    (call,) = to_openai_message(ai)["tool_calls"]
    assert call["function"]["arguments"] == '{"x": 1}'
    assert call["cache_control"] == EPHEMERAL


def test_anthropic_receives_cache_marks_on_tool_use_and_tool_result(provider: FakeProvider) -> None:
    conversation = [
        HumanMessage("Weather in Paris?"),
        AIMessage(
            [
                {
                    "type": "tool_use",
                    "id": "t1",
                    "name": "pick",
                    "input": {"c": "x"},
                    "cache_control": EPHEMERAL,
                }
            ]
        ),
        HumanMessage(
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": "sunny",
                    "cache_control": EPHEMERAL,
                }
            ]
        ),
    ]
    _model(provider).bind_tools([PICK]).invoke(conversation)
    _, reply, results = provider.requests[-1].body["messages"]
    assert reply["content"] == [
        {
            "type": "tool_use",
            "id": "t1",
            "name": "pick",
            "input": {"c": "x"},
            "cache_control": EPHEMERAL,
        }
    ]
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "sunny", "cache_control": EPHEMERAL}
    ]


def test_custom_documents_become_text() -> None:
    plain = {"type": "document", "source": {"type": "content", "content": "Chapter one."}}
    blocks = {
        "type": "document",
        "source": {
            "type": "content",
            "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}],
        },
    }
    assert to_openai_content([plain, blocks]) == [
        {"type": "text", "text": "Chapter one."},
        {"type": "text", "text": "First.\n\nSecond."},
    ]
    with_image = {
        "type": "document",
        "source": {"type": "content", "content": [{"type": "image", "url": "https://x/a.png"}]},
    }
    with pytest.raises(RequestError, match="content source must be text"):
        to_openai_content([with_image])


def test_a_chat_message_from_the_user_splits_tool_results_too() -> None:
    turn = ChatMessage(
        role="user",
        content=[
            {"type": "tool_result", "tool_use_id": "t1", "content": "42"},
            {"type": "text", "text": "thanks"},
        ],
    )
    assert to_openai_messages([turn]) == [
        {"role": "tool", "tool_call_id": "t1", "content": "42"},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
    ]
