"""Pure conversions between LangChain and litellm (OpenAI chat-completions) shapes.

Nothing here calls a provider or keeps state: messages go out as OpenAI-format dicts (litellm
translates them for Anthropic, Gemini, ...), answers come back as ``AIMessage`` /
``AIMessageChunk`` with parsed tool calls and LangChain-style usage.

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
from dataclasses import fields, is_dataclass
from decimal import Decimal
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import (
    invalid_tool_call,
    tool_call,
    tool_call_chunk,
)

from policyroute.errors import RequestError
from policyroute.execution.hooks import Usage

__all__ = [
    "chunk_to_message",
    "finish_reason_of",
    "jsonable",
    "message_from_response",
    "to_openai_content",
    "to_openai_message",
    "to_openai_messages",
    "tool_calls_from_openai",
    "tool_choice_param",
    "usage_metadata",
]


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a dict or a litellm (pydantic) object.

    litellm deletes unset optional fields from its objects, and a failed attribute lookup on a
    pydantic model goes through ``__getattr__`` and an exception: reading the instance dict
    first keeps the hot path of every call and every chunk cheap.
    """
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    values = getattr(obj, "__dict__", None)
    if values is not None:
        if key in values:
            return values[key]
        extra = getattr(obj, "__pydantic_extra__", None)
        if extra and key in extra:
            return extra[key]
        if hasattr(type(obj), "model_fields"):
            return default
    return getattr(obj, key, default)


# --------------------------------------------------------------------------- LangChain -> litellm


def _data_url(block: Mapping[str, Any], default_mime: str) -> str:
    # v1 standard blocks carry ``base64``; the older v0 ones ``source_type: base64`` + ``data``.
    data = block.get("base64") or block.get("data")
    mime = block.get("mime_type") or default_mime
    return f"data:{mime};base64,{data}"


def _block_url(block: Mapping[str, Any]) -> str | None:
    if block.get("url"):
        return str(block["url"])
    if block.get("base64") or (block.get("source_type") == "base64" and block.get("data")):
        return None
    if block.get("source_type") == "url" and block.get("data"):
        # Legacy v0 blocks put the URL in ``data``.
        return str(block["data"])
    return None


def _convert_block(block: str | Mapping[str, Any]) -> dict[str, Any] | None:
    """One LangChain content block as an OpenAI content part; ``None`` drops it."""
    if isinstance(block, str):
        return {"type": "text", "text": block}
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "image_url":
        image = block.get("image_url")
        return {
            "type": "image_url",
            "image_url": {"url": image} if isinstance(image, str) else image,
        }
    if kind == "image":
        url = _block_url(block)
        return {"type": "image_url", "image_url": {"url": url or _data_url(block, "image/png")}}
    if kind == "file":
        if block.get("file_id"):
            return {"type": "file", "file": {"file_id": block["file_id"]}}
        url = _block_url(block) or _data_url(block, "application/pdf")
        name = (block.get("extras") or {}).get("filename") or block.get("filename") or "document"
        return {"type": "file", "file": {"filename": name, "file_data": url}}
    if kind == "input_audio":
        return dict(block)
    if kind == "audio":
        mime = str(block.get("mime_type") or "audio/wav")
        data = block.get("base64") or block.get("data")
        return {"type": "input_audio", "input_audio": {"data": data, "format": mime.split("/")[-1]}}
    if kind in ("reasoning", "thinking", "tool_call", "tool_call_chunk", "function_call"):
        # Not content in the OpenAI shape: tool calls travel in ``tool_calls``, reasoning is
        # the provider's own and is not sent back.
        return None
    raise RequestError(f"unsupported content block type {kind!r} in a message")


def to_openai_content(content: str | Sequence[str | Mapping[str, Any]]) -> Any:
    """LangChain message content as OpenAI content: a string or a list of parts.

    Example:
        >>> to_openai_content([{"type": "image", "url": "https://x/y.png"}])
        [{'type': 'image_url', 'image_url': {'url': 'https://x/y.png'}}]
    """
    if isinstance(content, str):
        return content
    parts = [part for part in (_convert_block(b) for b in content) if part is not None]
    return parts


def _assistant_text(content: str | Sequence[str | Mapping[str, Any]]) -> str | None:
    """An assistant message's text: providers accept only text from the assistant role."""
    if isinstance(content, str):
        return content or None
    texts = [
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in content
        if isinstance(b, str) or b.get("type") == "text"
    ]
    joined = "".join(texts)
    return joined or None


def _openai_tool_call(call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def to_openai_message(message: BaseMessage) -> dict[str, Any]:
    """One LangChain message as an OpenAI chat message dict.

    Example:
        >>> from langchain_core.messages import AIMessage
        >>> m = AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1"}])
        >>> to_openai_message(m)["tool_calls"][0]["function"]
        {'name': 'f', 'arguments': '{"x": 1}'}
    """
    if isinstance(message, HumanMessage):
        out: dict[str, Any] = {"role": "user", "content": to_openai_content(message.content)}
    elif isinstance(message, SystemMessage):
        out = {"role": "system", "content": to_openai_content(message.content)}
    elif isinstance(message, AIMessage):
        out = {"role": "assistant", "content": _assistant_text(message.content)}
        calls = [
            _openai_tool_call(c["id"], c["name"], json.dumps(c["args"], ensure_ascii=False))
            for c in message.tool_calls
        ]
        # Malformed calls the model made are sent back verbatim so that the ToolMessages
        # answering them still match an id.
        calls += [
            _openai_tool_call(c["id"], c["name"], c["args"] or "")
            for c in message.invalid_tool_calls
        ]
        if calls:
            out["tool_calls"] = calls
    elif isinstance(message, ToolMessage):
        content = to_openai_content(message.content)
        out = {"role": "tool", "tool_call_id": message.tool_call_id, "content": content}
    elif isinstance(message, FunctionMessage):
        out = {"role": "function", "name": message.name, "content": message.content}
    elif isinstance(message, ChatMessage):
        out = {"role": message.role, "content": to_openai_content(message.content)}
    else:
        raise RequestError(f"unsupported message type {type(message).__name__}")
    if message.name and out["role"] in ("user", "assistant", "system"):
        out["name"] = message.name
    return out


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Every message converted with :func:`to_openai_message`."""
    return [to_openai_message(m) for m in messages]


def tool_choice_param(choice: Any, tool_names: Sequence[str]) -> Any:
    """LangChain's ``tool_choice`` in the OpenAI form litellm expects; ``None`` means omit.

    ``"any"`` and ``True`` force some tool (``"required"``; with a single tool ``True`` names
    it), ``"auto"``/``"none"``/``"required"`` pass through, a tool name forces that tool, and
    ``False``/``None`` send nothing. litellm translates the OpenAI form per provider
    (Anthropic: ``{"type": "any"}`` / ``{"type": "tool", "name": ...}``).

    Example:
        >>> tool_choice_param("lookup", ["lookup", "other"])
        {'type': 'function', 'function': {'name': 'lookup'}}
        >>> tool_choice_param(True, ["lookup"])
        {'type': 'function', 'function': {'name': 'lookup'}}
    """
    if choice is None or choice is False:
        return None
    if choice is True:
        if len(tool_names) == 1:
            return {"type": "function", "function": {"name": tool_names[0]}}
        return "required"
    if isinstance(choice, str):
        if choice == "any":
            return "required"
        if choice in ("auto", "none", "required"):
            return choice
        if choice not in tool_names:
            raise RequestError(
                f"tool_choice {choice!r} names no bound tool (bound: {', '.join(tool_names)})"
            )
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, Mapping):
        return dict(choice)
    raise RequestError(f"unsupported tool_choice {choice!r}")


# --------------------------------------------------------------------------- litellm -> LangChain


def tool_calls_from_openai(
    raw_calls: Sequence[Any] | None,
) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """OpenAI tool calls split into parsed calls and calls whose arguments are not a JSON object.

    Example:
        >>> ok, bad = tool_calls_from_openai([
        ...     {"id": "a", "function": {"name": "f", "arguments": '{"x": 1}'}},
        ...     {"id": "b", "function": {"name": "g", "arguments": "{oops"}}])
        >>> ok[0]["args"], bad[0]["args"]
        ({'x': 1}, '{oops')
    """
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for raw in raw_calls or ():
        function = _get(raw, "function")
        name = _get(function, "name")
        arguments = _get(function, "arguments") or ""
        call_id = _get(raw, "id")
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except (json.JSONDecodeError, AttributeError) as exc:
            invalid.append(invalid_tool_call(name=name, args=arguments, id=call_id, error=str(exc)))
            continue
        if not isinstance(args, dict):
            error = f"tool arguments are a JSON {type(args).__name__}, not an object"
            invalid.append(invalid_tool_call(name=name, args=arguments, id=call_id, error=error))
            continue
        calls.append(tool_call(name=name or "", args=args, id=call_id))
    return calls, invalid


def usage_metadata(usage: Usage) -> UsageMetadata:
    """policyroute's :class:`~policyroute.execution.hooks.Usage` as LangChain usage metadata.

    Detail keys appear only when the provider reported a non-zero count.

    Example:
        >>> usage_metadata(Usage(input_tokens=10, output_tokens=4, cache_read_tokens=6))
        {'input_tokens': 10, 'output_tokens': 4, 'total_tokens': 14, 'input_token_details': {'cache_read': 6}}
    """  # noqa: E501
    out = UsageMetadata(
        input_tokens=int(usage.input_tokens),
        output_tokens=int(usage.output_tokens),
        total_tokens=int(usage.input_tokens + usage.output_tokens),
    )
    input_details = InputTokenDetails()
    if usage.cache_read_tokens:
        input_details["cache_read"] = int(usage.cache_read_tokens)
    if usage.cache_write_tokens:
        input_details["cache_creation"] = int(usage.cache_write_tokens)
    if input_details:
        out["input_token_details"] = input_details
    if usage.reasoning_tokens:
        out["output_token_details"] = OutputTokenDetails(reasoning=int(usage.reasoning_tokens))
    return out


def finish_reason_of(response: Any) -> str | None:
    """The finish reason of the first choice of a litellm ``ModelResponse``."""
    choices = _get(response, "choices")
    return _get(choices[0], "finish_reason") if choices else None


def message_from_response(
    response: Any,
    *,
    usage_metadata: UsageMetadata | None = None,
    response_metadata: dict[str, Any] | None = None,
) -> AIMessage:
    """The first choice of a litellm ``ModelResponse`` as an ``AIMessage``.

    Usage and response metadata come from the caller, who knows the whole call; they are
    passed in so that the message is built once.
    """
    choices = _get(response, "choices")
    message = _get(choices[0], "message") if choices else None
    extra: dict[str, Any] = {}
    reasoning = _get(message, "reasoning_content")
    if reasoning:
        extra["reasoning_content"] = reasoning
    refusal = _get(message, "refusal")
    if refusal:
        extra["refusal"] = refusal
    fields: dict[str, Any] = {
        "content": _get(message, "content") or "",
        "additional_kwargs": extra,
        "response_metadata": response_metadata or {},
        "usage_metadata": usage_metadata,
        "id": _get(response, "id"),
    }
    raw_calls = _get(message, "tool_calls")
    if raw_calls:
        fields["tool_calls"], fields["invalid_tool_calls"] = tool_calls_from_openai(raw_calls)
    return AIMessage(**fields)


def chunk_to_message(chunk: Any) -> tuple[AIMessageChunk | None, str | None]:
    """A litellm stream chunk as an ``AIMessageChunk`` (``None`` when it carries nothing).

    Tool-call deltas become ``tool_call_chunks`` (index, id, name and argument fragment) that
    LangChain merges across chunks. The finish reason is returned apart, for the final chunk.
    """
    choices = _get(chunk, "choices") or []
    if not choices:
        return None, None
    choice = choices[0]
    delta = _get(choice, "delta")
    content = _get(delta, "content") or ""
    chunks: list[ToolCallChunk] = []
    for raw in _get(delta, "tool_calls") or ():
        function = _get(raw, "function")
        chunks.append(
            tool_call_chunk(
                name=_get(function, "name"),
                args=_get(function, "arguments"),
                id=_get(raw, "id"),
                index=_get(raw, "index"),
            )
        )
    extra: dict[str, Any] = {}
    reasoning = _get(delta, "reasoning_content")
    if reasoning:
        extra["reasoning_content"] = reasoning
    finish = _get(choice, "finish_reason")
    if not content and not chunks and not extra:
        return None, finish
    message = AIMessageChunk(
        content=content, tool_call_chunks=chunks, additional_kwargs=extra, id=_get(chunk, "id")
    )
    return message, finish


def jsonable(value: Any) -> Any:
    """``value`` with dataclasses, decimals and tuples made JSON-friendly (decimals as strings).

    Example:
        >>> jsonable({"cost": Decimal("0.000123"), "xs": (1, 2)})
        {'cost': '0.000123', 'xs': [1, 2]}
    """
    if isinstance(value, Decimal):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return value
