"""The text-only fast paths of a call's messages must give what the general paths give:
``plain_text_messages`` what ``to_openai_messages`` makes (or nothing), and ``prepare`` the
messages LangChain's own input conversion and normalisation hand to ``_generate``."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models._utils import _normalize_messages
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompt_values import ChatPromptValue

from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.outbound import plain_text_messages, to_openai_messages
from policyroute.langchain_.unobserved import prepare
from policyroute.request_checks import check_parts


class LoudHuman(HumanMessage):
    """A subclass: the fast path leaves it to the general one."""


_IMAGE = {"type": "image", "source_type": "url", "url": "https://example.com/a.png"}
_AUDIO = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}

PLAIN: dict[str, list[BaseMessage]] = {
    "one human": [HumanMessage("hi")],
    "system and human": [SystemMessage("be brief"), HumanMessage("hi")],
    "names": [SystemMessage("s", name="rules"), HumanMessage("h", name="ann")],
    "empty texts": [SystemMessage(""), HumanMessage("")],
    "unicode": [HumanMessage("héllo \u2603 \ud83d\ude00")],
    "empty name": [HumanMessage("x", name="")],
    "no messages": [],
}

MIXED: dict[str, list[BaseMessage]] = {
    "assistant turn": [HumanMessage("q"), AIMessage("a"), HumanMessage("q2")],
    "tool turn": [
        HumanMessage("q"),
        AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "c1"}]),
        ToolMessage("42", tool_call_id="c1"),
    ],
    "text blocks": [HumanMessage([{"type": "text", "text": "hi"}])],
    "string parts": [HumanMessage(["a", "b"])],
    "image v0": [HumanMessage([{"type": "text", "text": "see"}, _IMAGE])],
    "openai audio": [HumanMessage([_AUDIO])],
    "system blocks": [SystemMessage([{"type": "text", "text": "s"}]), HumanMessage("h")],
    "chat user": [ChatMessage(role="user", content="hi")],
    "subclass": [LoudHuman("hi", name="n")],
    "tool result": [HumanMessage([{"type": "tool_result", "tool_use_id": "t", "content": "1"}])],
    "plain then blocks": [HumanMessage("a"), HumanMessage([{"type": "text", "text": "b"}])],
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_text_messages_take_the_fast_path_and_match_the_general_one(name: str) -> None:
    messages = PLAIN[name]
    fast = plain_text_messages(messages)
    assert fast is not None
    assert fast == to_openai_messages(messages)
    assert [list(m) for m in fast] == [list(m) for m in to_openai_messages(messages)]
    check_parts(fast)


@pytest.mark.parametrize("name", sorted(MIXED))
def test_other_messages_take_the_general_path(name: str) -> None:
    assert plain_text_messages(MIXED[name]) is None


def _dump(message: BaseMessage) -> dict[str, Any]:
    # Converted blocks get fresh ids (``lc_<uuid>``) each time: only their presence can match.
    dumped = message.model_dump()
    if isinstance(dumped["content"], list):
        dumped["content"] = [
            {**b, "id": "lc_"} if isinstance(b, dict) and str(b.get("id")).startswith("lc_") else b
            for b in dumped["content"]
        ]
    return dumped


def _langchains(llm: ChatPolicyRoute, value: Any) -> list[BaseMessage]:
    # What BaseChatModel.invoke hands _generate: the input converted, then normalised.
    return _normalize_messages(llm._convert_input(value).to_messages())


@pytest.mark.parametrize("name", sorted({**PLAIN, **MIXED}))
def test_prepare_gives_langchains_messages(llm: ChatPolicyRoute, name: str) -> None:
    messages = {**PLAIN, **MIXED}[name]
    prepared = prepare(llm, list(messages), {})
    expected = _langchains(llm, list(messages))
    assert [type(m) for m in prepared] == [type(m) for m in expected]
    assert [_dump(m) for m in prepared] == [_dump(m) for m in expected]
    # Messages LangChain leaves alone are handed on as they are, never copied.
    for given, mine, theirs in zip(messages, prepared, expected, strict=True):
        assert (mine is given) == (theirs is given)


@pytest.mark.parametrize(
    "value",
    [
        "hi",
        [("system", "s"), ("human", "h")],
        [HumanMessage("a"), ("human", "b")],
        ChatPromptValue(messages=[HumanMessage("x")]),
    ],
)
def test_prepare_converts_other_inputs_as_langchain_does(llm: ChatPolicyRoute, value: Any) -> None:
    prepared = prepare(llm, value, {})
    assert [_dump(m) for m in prepared] == [_dump(m) for m in _langchains(llm, value)]


def test_prepare_returns_a_new_list_and_drops_tracing_keywords(llm: ChatPolicyRoute) -> None:
    messages: list[BaseMessage] = [HumanMessage("hi")]
    kwargs = {"ls_structured_output_format": {}, "structured_output_format": {}, "seed": 1}
    prepared = prepare(llm, messages, kwargs)
    assert prepared == messages
    assert prepared is not messages
    assert kwargs == {"seed": 1}
