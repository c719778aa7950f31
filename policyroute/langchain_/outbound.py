"""LangChain messages and tools in the OpenAI chat-completions shape litellm takes.

litellm translates that shape for every provider (Anthropic, Gemini, Bedrock, ...), so this is
the one place where LangChain's content is mapped. It accepts LangChain's standard (v1) blocks
(text, image, file, audio, video, text-plain), the older v0 data blocks, OpenAI-format parts, and
Anthropic-format blocks (``image`` and ``document`` with a ``source``, ``tool_result`` in a
human turn, ``tool_use`` beside the tool calls). ``cache_control`` marks on parts and tools
are kept: litellm passes them to providers with prompt caching and strips them for the others.

Example:
    >>> from langchain_core.messages import HumanMessage, SystemMessage
    >>> to_openai_messages([SystemMessage("be brief"), HumanMessage("hi")])
    [{'role': 'system', 'content': 'be brief'}, {'role': 'user', 'content': 'hi'}]
    >>> tool_choice_param("any", ["lookup"])
    'required'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from policyroute._thinking import thinking_in_content
from policyroute.errors import RequestError
from policyroute.langchain_.content_parts import (
    Content,
    cache_control,
    convert_block,
    to_openai_content,
)
from policyroute.langchain_.tool_choice import to_openai_tool, tool_choice_param

__all__ = [
    "plain_text_messages",
    "to_openai_content",
    "to_openai_message",
    "to_openai_messages",
    "to_openai_tool",
    "tool_choice_param",
]


def _assistant_content(content: Content) -> Any:
    """An assistant message's content: providers accept only text from the assistant role.

    Plain text unless a text block carries a prompt-cache mark, which only a list of text
    parts can keep.
    """
    if isinstance(content, str):
        return content or None
    texts = [
        {"type": "text", "text": b} if isinstance(b, str) else b
        for b in content
        if isinstance(b, str) or b.get("type") == "text"
    ]
    if any(cache_control(b) is not None for b in texts):
        # Empty text blocks are refused by Anthropic; a list left empty means no content.
        return [convert_block(b) for b in texts if b.get("text")] or None
    joined = "".join(str(b.get("text", "")) for b in texts)
    return joined or None


def _openai_tool_call(call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _invalid_arguments(args: str | None) -> str:
    """The arguments an invalid tool call is sent back with: as the model wrote them
    (``"{}"`` when it wrote none).

    The text is kept so that the model sees the call it made. Deployments that read a call's
    arguments only as a JSON object (Claude, Gemini, ...) get ``"{}"`` in its place, chosen
    per attempt once routing has picked the deployment (see
    :mod:`policyroute.execution.tool_arguments`); the ToolMessage answering the call says
    what was wrong.
    """
    return args or "{}"


def _tool_use_blocks(content: Content) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return []
    return [b for b in content if isinstance(b, Mapping) and b.get("type") == "tool_use"]


def _assistant_calls(message: AIMessage) -> list[dict[str, Any]]:
    """The assistant turn's tool calls: its ``tool_calls``, else its Anthropic-format
    ``tool_use`` blocks (which langchain-core does not always copy into ``tool_calls``); a
    block's prompt-cache mark goes on its call, where litellm reads it."""
    blocks = _tool_use_blocks(message.content)
    pairs: list[tuple[Any, Any, Any]]
    if message.tool_calls:
        pairs = [(c["id"], c["name"], c["args"]) for c in message.tool_calls]
    else:
        pairs = [(b.get("id"), b.get("name"), b.get("input") or {}) for b in blocks]
    marks = {b.get("id"): cache_control(b) for b in blocks}
    calls = []
    for call_id, name, args in pairs:
        call = _openai_tool_call(call_id, name, json.dumps(args, ensure_ascii=False))
        mark = marks.get(call_id)
        if mark is not None:
            call["cache_control"] = mark
        calls.append(call)
    return calls


def _tool_result_text(block: Mapping[str, Any]) -> Any:
    content = block.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return to_openai_content(content)
    raise RequestError("tool_result block: content must be text or a list of blocks")


def _empty_text(block: str | Mapping[str, Any]) -> bool:
    if isinstance(block, str):
        return not block
    return block.get("type") == "text" and not block.get("text")


def _human(message: HumanMessage | ChatMessage) -> list[dict[str, Any]]:
    """A human turn; Anthropic-format ``tool_result`` blocks in it become tool messages,
    placed first (they answer the assistant turn before it)."""
    content = message.content
    if isinstance(content, str) or not any(
        isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content
    ):
        return [{"role": "user", "content": to_openai_content(content)}]
    out: list[dict[str, Any]] = []
    rest: list[str | Mapping[str, Any]] = []
    for block in content:
        if isinstance(block, Mapping) and block.get("type") == "tool_result":
            call_id = block.get("tool_use_id")
            if not call_id:
                raise RequestError("tool_result block without a tool_use_id")
            result = {
                "role": "tool",
                "tool_call_id": str(call_id),
                "content": _tool_result_text(block),
            }
            mark = cache_control(block)
            if mark is not None:
                # The usual cache breakpoint of an agent loop; litellm reads it on the message.
                result["cache_control"] = mark
            out.append(result)
        elif not (
            isinstance(block, Mapping) and block.get("type") == "text" and not block.get("text")
        ):
            # Empty text beside tool results is dropped: Anthropic refuses empty text blocks.
            rest.append(block)
    parts = to_openai_content(rest)
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _function_call(message: AIMessage) -> dict[str, Any] | None:
    """The legacy OpenAI ``function_call`` of an assistant turn (LangChain keeps it in
    ``additional_kwargs``): without it, the function message answering it would follow an
    empty assistant turn, which providers refuse."""
    call = message.additional_kwargs.get("function_call")
    if not isinstance(call, Mapping) or not call.get("name"):
        return None
    arguments = call.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {}, ensure_ascii=False)
    return {"name": call["name"], "arguments": arguments}


def _thinking_blocks(message: AIMessage) -> list[dict[str, Any]]:
    """The thinking blocks an assistant turn is sent back with (see
    :mod:`policyroute._thinking`): policyroute's own, kept in ``additional_kwargs`` with
    their origin marks, else the signed ones in its content: ``thinking`` and
    ``redacted_thinking`` blocks (as langchain-anthropic keeps them in its default format),
    or standard (v1) ``reasoning`` blocks with a signature, as an answer in LangChain's v1
    format holds them (marked when policyroute produced them)."""
    kept = message.additional_kwargs.get("thinking_blocks")
    if isinstance(kept, Sequence) and not isinstance(kept, str):
        return [
            dict(b)
            for b in kept
            if isinstance(b, Mapping) and b.get("type") in ("thinking", "redacted_thinking")
        ]
    if isinstance(message.content, str):
        return []
    return thinking_in_content(message.content, message.response_metadata.get("model_provider"))


def _one(message: BaseMessage) -> dict[str, Any]:
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": to_openai_content(message.content)}
    if isinstance(message, AIMessage):
        out: dict[str, Any] = {
            "role": "assistant",
            "content": _assistant_content(message.content),
        }
        calls = _assistant_calls(message)
        # Malformed calls the model made are sent back so that the ToolMessages answering
        # them still match an id (see _invalid_arguments for their arguments).
        calls += [
            _openai_tool_call(c["id"], c["name"], _invalid_arguments(c["args"]))
            for c in message.invalid_tool_calls
        ]
        if calls:
            out["tool_calls"] = calls
        else:
            function_call = _function_call(message)
            if function_call is not None:
                out["function_call"] = function_call
            elif out["content"] is None:
                # OpenAI refuses an assistant turn with neither content nor a call ("expected
                # a string, got null"): an empty answer (a cancelled or blank turn) is "".
                out["content"] = ""
        blocks = _thinking_blocks(message)
        if blocks:
            out["thinking_blocks"] = blocks
        return out
    if isinstance(message, ToolMessage):
        content = to_openai_content(message.content)
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": content}
    if isinstance(message, FunctionMessage):
        return {"role": "function", "name": message.name, "content": message.content}
    if isinstance(message, ChatMessage):
        return {"role": message.role, "content": to_openai_content(message.content)}
    raise RequestError(f"unsupported message type {type(message).__name__}")


def _with_name(message: BaseMessage, out: dict[str, Any]) -> dict[str, Any]:
    if message.name and out["role"] in ("user", "assistant", "system", "developer", "function"):
        out["name"] = message.name
    return out


def to_openai_message(message: BaseMessage) -> dict[str, Any]:
    """One LangChain message as one OpenAI chat message dict.

    A human message holding Anthropic-format ``tool_result`` blocks maps to several OpenAI
    messages: convert it with :func:`to_openai_messages`.

    Example:
        >>> from langchain_core.messages import AIMessage
        >>> m = AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1"}])
        >>> to_openai_message(m)["tool_calls"][0]["function"]
        {'name': 'f', 'arguments': '{"x": 1}'}
    """
    if isinstance(message, HumanMessage):
        converted = _human(message)
        if len(converted) != 1 or converted[0]["role"] != "user":
            raise RequestError(
                "a human message with tool_result blocks maps to several messages: "
                "use to_openai_messages"
            )
        return _with_name(message, converted[0])
    return _with_name(message, _one(message))


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as OpenAI chat messages.

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> turn = HumanMessage([{"type": "tool_result", "tool_use_id": "t1", "content": "42"}])
        >>> to_openai_messages([turn])
        [{'role': 'tool', 'tool_call_id': 't1', 'content': '42'}]
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, HumanMessage) or (
            isinstance(message, ChatMessage) and message.role == "user"
        ):
            out.extend(
                _with_name(message, part) if part["role"] == "user" else part
                for part in _human(message)
            )
        else:
            out.append(_with_name(message, _one(message)))
    return out


_TEXT_ROLES: dict[type[BaseMessage], str] = {HumanMessage: "user", SystemMessage: "system"}


def plain_text_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]] | None:
    """:func:`to_openai_messages` of ``messages`` when every one is a human or system message
    whose content is text (the usual prompt); ``None`` for anything else.

    Such messages map one to one, without block conversions, and hold nothing for
    :func:`~policyroute.message_checks.check_messages` to refuse (no parts, no tool turns).

    Example:
        >>> from langchain_core.messages import HumanMessage, SystemMessage
        >>> plain_text_messages([SystemMessage("be brief"), HumanMessage("hi", name="ann")])
        [{'role': 'system', 'content': 'be brief'}, {'role': 'user', 'content': 'hi', 'name': 'ann'}]
        >>> plain_text_messages([HumanMessage([{"type": "text", "text": "hi"}])]) is None
        True
    """  # noqa: E501
    out: list[dict[str, Any]] = []
    for message in messages:
        role = _TEXT_ROLES.get(type(message))
        content = message.content
        if role is None or type(content) is not str:
            return None
        converted = {"role": role, "content": content}
        if message.name:
            converted["name"] = message.name
        out.append(converted)
    return out
