"""ChatPolicyRoute refuses a history no provider takes with a RequestError naming the message,
before anything is sent, where ChatOpenAI sends it and the provider answers with a 400: a
ChatMessage whose role is none of OpenAI's, a function ChatMessage without the function's
name, a ToolMessage that answers no call of the AI turn before it (a history trimmed between
an AIMessage and the ToolMessages answering it). What providers take still reaches them: a
FunctionMessage answering a legacy function call, ChatMessages of OpenAI's roles, an empty
AIMessage (sent as ``content: ""``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from policyroute.errors import RequestError
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

ASK = HumanMessage("what is f?")
CALLS_F = AIMessage("", tool_calls=[{"id": "call_1", "name": "f", "args": {}}])

# (history, what the error says)
BAD: list[tuple[list[BaseMessage], str]] = [
    ([ChatMessage(content="hi", role="bot")], "'messages[0].role' is 'bot'"),
    (
        [ChatMessage(content="hi", role="human")],
        "'messages[0].role' is 'human' (did you mean 'user'?)",
    ),
    ([ASK, ChatMessage(content="1", role="function")], "'messages[1].name' must be the name"),
    (
        [ASK, ToolMessage("1", tool_call_id="call_1")],
        "'messages[1].tool_call_id' is 'call_1', but no assistant message comes before it",
    ),
    (
        [SystemMessage("be brief"), ASK, CALLS_F, ToolMessage("1", tool_call_id="call_2")],
        "'messages[3].tool_call_id' is 'call_2', but the latest assistant message before it,"
        " messages[2], made no such call",
    ),
    (
        [
            ASK,
            CALLS_F,
            ToolMessage("1", tool_call_id="call_1"),
            AIMessage("f is 1"),
            ToolMessage("1", tool_call_id="call_1"),
        ],
        "'messages[4].tool_call_id' is 'call_1'",
    ),
]


@pytest.mark.parametrize(("history", "said"), BAD)
def test_invoke_and_stream_refuse_a_history_no_provider_takes(
    llm: ChatPolicyRoute, fp: FakeProvider, history: list[BaseMessage], said: str
) -> None:
    fp.set_default("*", Reply(text="ok"))
    with pytest.raises(RequestError) as info:
        llm.invoke(history)
    assert str(info.value).startswith("request field ")
    assert said in str(info.value)
    with pytest.raises(RequestError, match="request field"):
        list(llm.stream(history))
    assert fp.requests == []


@pytest.mark.parametrize(("history", "said"), BAD)
def test_ainvoke_and_astream_refuse_it_too(
    llm: ChatPolicyRoute, fp: FakeProvider, history: list[BaseMessage], said: str
) -> None:
    async def main() -> None:
        with pytest.raises(RequestError) as info:
            await llm.ainvoke(history)
        assert said in str(info.value)
        with pytest.raises(RequestError):
            async for _ in llm.astream(history):
                pass

    asyncio.run(main())
    assert fp.requests == []


def _sent(fp: FakeProvider) -> list[dict[str, Any]]:
    (recorded,) = fp.requests
    assert isinstance(recorded.body, dict)
    messages: list[dict[str, Any]] = recorded.body["messages"]
    return messages


def test_a_function_message_answering_a_legacy_call_is_sent(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.set_default("*", Reply(text="ok"))
    call = AIMessage("", additional_kwargs={"function_call": {"name": "f", "arguments": "{}"}})
    llm.invoke([ASK, call, FunctionMessage(content="1", name="f")])
    assert _sent(fp)[2] == {"role": "function", "name": "f", "content": "1"}


def test_chat_messages_of_openai_roles_are_sent_with_their_names(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.set_default("*", Reply(text="ok"))
    call = AIMessage("", additional_kwargs={"function_call": {"name": "f", "arguments": "{}"}})
    history: list[BaseMessage] = [
        ChatMessage(content="be brief", role="developer"),
        ChatMessage(content="what is f?", role="user"),
        call,
        ChatMessage(content="1", role="function", name="f"),
        ChatMessage(content="f is 1", role="assistant"),
        AIMessage(""),
        ASK,
    ]
    assert llm.invoke(history).content == "ok"
    sent = _sent(fp)
    assert [m["role"] for m in sent] == [
        "system",  # litellm sends developer as system to a model it does not know takes it
        "user",
        "assistant",
        "function",
        "assistant",
        "assistant",
        "user",
    ]
    assert sent[3] == {"role": "function", "name": "f", "content": "1"}
    assert sent[5] == {"role": "assistant", "content": ""}


def test_a_whole_tool_exchange_is_sent(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.set_default("*", Reply(text="ok"))
    two = AIMessage(
        "",
        tool_calls=[
            {"id": "call_1", "name": "f", "args": {}},
            {"id": "call_2", "name": "f", "args": {"x": 2}},
        ],
    )
    history: list[BaseMessage] = [
        ASK,
        two,
        ToolMessage("2", tool_call_id="call_2"),
        ToolMessage("1", tool_call_id="call_1"),
    ]
    llm.invoke(history)
    assert [m.get("tool_call_id") for m in _sent(fp)] == [None, None, "call_2", "call_1"]
