"""The tool loop litellm users write: the answer's message object goes back into the history.

``litellm.completion`` takes pydantic messages (litellm's ``Message``, the OpenAI SDK's
``ChatCompletionMessage``) and pydantic tool calls inside a message mapping, as the dict
``model_dump(exclude_none=True)`` makes of them; ``policyroute.completion`` takes the same, and
sends the same as litellm would (an Anthropic thinking block included).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import policyroute
from policyroute.api import clear_cache
from policyroute.errors import RequestError
from policyroute.testing import FakeProvider, Reply, ToolCall

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: message-objects
models:
  o:
    model: openai/gpt-4o-mini
    api_base: {openai}
    api_key: ${{PR_MSG_OBJ_KEY}}
  c:
    model: anthropic/claude-haiku-4-5
    api_base: {anthropic}
    api_key: ${{PR_MSG_OBJ_KEY}}
routes:
  - name: claude
    when: {{metadata.to: claude}}
    to: c
  - name: default
    to: o
receipts: {{sink: none}}
defaults: {{max_tokens: 2000, retry: {{attempts: 0}}}}
"""
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]
ASK = {"role": "user", "content": "look it up"}


@pytest.fixture
def policy(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("PR_MSG_OBJ_KEY", "sk-test")
    provider.reset()
    clear_cache()
    yield POLICY.format(openai=provider.openai_base, anthropic=provider.anthropic_base)
    clear_cache()
    provider.reset()


def _script(provider: FakeProvider, model: str, thinking: str | None = None) -> None:
    provider.script(
        model,
        Reply(tool_calls=[ToolCall("lookup", {"q": "x"}, id="call_1")], thinking=thinking),
        Reply(text="found it"),
    )


def _sent_assistant(provider: FakeProvider, model: str) -> dict[str, Any]:
    sent = provider.requests_for(model)[-1].body["messages"]
    (assistant,) = [m for m in sent if m["role"] == "assistant"]
    return dict(assistant)


@pytest.mark.parametrize("stream", [False, True])
def test_the_answers_message_object_goes_back_into_the_history(
    provider: FakeProvider, policy: str, stream: bool
) -> None:
    _script(provider, "gpt-4o-mini")
    first = policyroute.completion(policy=policy, messages=[ASK], tools=TOOLS, stream=stream)
    if stream:
        list(first)
        message = first.result.response.choices[0].message
    else:
        message = first.choices[0].message
    assert not isinstance(message, dict)  # litellm's Message, a pydantic model
    history = [ASK, message, {"role": "tool", "tool_call_id": "call_1", "content": "42"}]

    second = policyroute.completion(policy=policy, messages=history, tools=TOOLS)

    assert second.choices[0].message.content == "found it"
    sent = _sent_assistant(provider, "gpt-4o-mini")
    assert sent["tool_calls"][0]["id"] == "call_1"
    assert sent["tool_calls"][0]["function"]["name"] == "lookup"
    assert "content" not in sent or sent["content"] is None
    assert isinstance(history[1], type(message))  # the caller's history is left as it was


def test_an_anthropic_thinking_block_on_the_message_object_is_sent_back(
    provider: FakeProvider, policy: str
) -> None:
    _script(provider, "claude-haiku-4-5", thinking="let me look")
    extra: dict[str, Any] = {
        "metadata": {"to": "claude"},
        "tools": TOOLS,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    first = policyroute.completion(policy=policy, messages=[ASK], **extra)
    message = first.choices[0].message
    history = [ASK, message, {"role": "tool", "tool_call_id": "call_1", "content": "42"}]

    second = policyroute.completion(policy=policy, messages=history, **extra)

    assert second.choices[0].message.content == "found it"
    blocks = _sent_assistant(provider, "claude-haiku-4-5")["content"]
    assert [b["type"] for b in blocks] == ["thinking", "tool_use"]
    assert blocks[0]["thinking"] == "let me look"


def test_tool_call_objects_inside_a_message_mapping(provider: FakeProvider, policy: str) -> None:
    _script(provider, "gpt-4o-mini")
    first = policyroute.completion(policy=policy, messages=[ASK], tools=TOOLS)
    calls = first.choices[0].message.tool_calls
    history = [
        ASK,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0].id, "content": "42"},
    ]

    async def run() -> Any:
        return await policyroute.acompletion(policy=policy, messages=history, tools=TOOLS)

    second = asyncio.run(run())

    assert second.choices[0].message.content == "found it"
    assert _sent_assistant(provider, "gpt-4o-mini")["tool_calls"][0]["id"] == "call_1"


def test_a_message_that_is_neither_a_mapping_nor_a_model_is_still_refused(
    provider: FakeProvider, policy: str
) -> None:
    with pytest.raises(RequestError, match=r"'messages\[1\]'"):
        policyroute.completion(policy=policy, messages=[ASK, "just text"])
    assert provider.requests == []


def test_a_message_object_keeps_the_tool_turn_checks(provider: FakeProvider, policy: str) -> None:
    from litellm.types.utils import ChatCompletionMessageToolCall, Function, Message

    broken = Message(
        role="assistant",
        content=None,
        tool_calls=[ChatCompletionMessageToolCall(id="", function=Function(name="f"))],
    )
    with pytest.raises(RequestError, match=r"'messages\[1\]\.tool_calls\[0\]\.id'"):
        policyroute.completion(policy=policy, messages=[ASK, broken])
    assert provider.requests == []


def test_an_openai_sdk_message_is_taken_too(provider: FakeProvider, policy: str) -> None:
    from openai.types.chat import ChatCompletionMessage

    provider.script("gpt-4o-mini", Reply(text="again"))
    said = ChatCompletionMessage(role="assistant", content="earlier answer")
    history = [ASK, said, {"role": "user", "content": "and now?"}]

    answer = policyroute.completion(policy=policy, messages=history)

    assert answer.choices[0].message.content == "again"
    sent = _sent_assistant(provider, "gpt-4o-mini")
    assert sent == {"role": "assistant", "content": "earlier answer"}
