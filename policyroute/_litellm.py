"""Pure conversions of litellm's answers into LangChain's shapes.

Nothing here calls a provider or keeps state: answers come back as ``AIMessage`` /
``AIMessageChunk`` with parsed tool calls and LangChain-style usage. The way out, LangChain
messages and tools as OpenAI-format dicts, is :mod:`policyroute.langchain_.outbound`.

Example:
    >>> usage_metadata(Usage(input_tokens=3, output_tokens=2))
    {'input_tokens': 3, 'output_tokens': 2, 'total_tokens': 5}
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
    InvalidToolCall,
    ToolCall,
    ToolCallChunk,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import (
    invalid_tool_call,
    tool_call,
    tool_call_chunk,
)

from policyroute._fields import read as _get
from policyroute._fields import reader
from policyroute._thinking import signed_blocks
from policyroute.execution.hooks import Usage

__all__ = [
    "chunk_to_message",
    "finish_reason_of",
    "jsonable",
    "message_from_response",
    "message_of",
    "tool_calls_from_openai",
    "usage_metadata",
]


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
    thinking_origin: str | None = None,
) -> AIMessage:
    """The first choice of a litellm ``ModelResponse`` as an ``AIMessage``.

    Usage and response metadata come from the caller, who knows the whole call; they are
    passed in so that the message is built once. Signed thinking blocks are kept in
    ``additional_kwargs["thinking_blocks"]``, marked with ``thinking_origin`` (the answering
    deployment's, see :mod:`policyroute._thinking`), so that a later turn can send them back.
    """
    choices = _get(response, "choices")
    message = _get(choices[0], "message") if choices else None
    return message_of(
        message,
        _get(response, "id"),
        usage_metadata=usage_metadata,
        response_metadata=response_metadata,
        thinking_origin=thinking_origin,
    )


# Every key message_of reads from a message, for ``reader``.
_MESSAGE_KEYS = (
    "reasoning_content",
    "thinking_blocks",
    "refusal",
    "content",
    "tool_calls",
    "provider_specific_fields",
)


def message_of(
    message: Any,
    response_id: str | None,
    *,
    usage_metadata: UsageMetadata | None = None,
    response_metadata: dict[str, Any] | None = None,
    thinking_origin: str | None = None,
) -> AIMessage:
    """A choice's ``message`` (``None``: empty) as the ``AIMessage`` with id ``response_id``
    that :func:`message_from_response` makes of its response.

    Example:
        >>> message_of({"content": "hi"}, "chatcmpl-1").content
        'hi'
    """
    get = reader(message, _MESSAGE_KEYS)  # runs for every answer: one call per key read
    extra: dict[str, Any] = {}
    reasoning = get("reasoning_content")
    if reasoning:
        extra["reasoning_content"] = reasoning
    raw_blocks = get("thinking_blocks")
    if raw_blocks:
        blocks = signed_blocks(raw_blocks, thinking_origin)
        if blocks:
            extra["thinking_blocks"] = blocks
    refusal = get("refusal")
    if not refusal:
        # litellm keeps an OpenAI refusal among the provider's own fields, not as a field of
        # the message: read there, it is where langchain-openai's callers find it.
        specific = get("provider_specific_fields")
        refusal = _get(specific, "refusal") if specific else None
    if refusal:
        extra["refusal"] = refusal
    fields: dict[str, Any] = {
        "content": get("content") or "",
        "additional_kwargs": extra,
        "response_metadata": response_metadata or {},
        "usage_metadata": usage_metadata,
        "id": response_id,
    }
    raw_calls = get("tool_calls")
    if raw_calls:
        fields["tool_calls"], fields["invalid_tool_calls"] = tool_calls_from_openai(raw_calls)
    return AIMessage(**fields)


_NO_CALL = object()
"""What :func:`chunk_to_message` finds for an index no named tool call has had."""


def chunk_to_message(
    chunk: Any, named: dict[Any, str | None] | None = None
) -> tuple[AIMessageChunk | None, str | None]:
    """A litellm stream chunk as an ``AIMessageChunk`` (``None`` when it carries nothing).

    Tool-call deltas become ``tool_call_chunks`` (index, id, name and argument fragment) that
    LangChain merges across chunks. The finish reason is returned apart, for the final chunk.

    ``named`` maps the index of each of the stream's tool calls whose name was given already
    to that call's id (``None`` until one came); it is updated. Some OpenAI-compatible servers
    repeat a call's name on each of its fragments: LangChain concatenates the names it merges
    (``addadd``), so a name repeated for the same call is left out, as litellm's own
    ``stream_chunk_builder`` keeps one name per call. A fragment with another id at a known
    index begins a new call (servers that number every call 0 do that; LangChain keeps calls
    of different ids apart) and keeps its name.

    Example:
        >>> def part(name: str, call_id: str) -> dict[str, Any]:
        ...     function = {"name": name, "arguments": "{}"}
        ...     call = {"index": 0, "id": call_id, "function": function}
        ...     return {"choices": [{"delta": {"tool_calls": [call]}}]}
        >>> seen: dict[Any, str | None] = {}
        >>> [chunk_to_message(part(name, call_id), seen)[0].tool_call_chunks[0]["name"]
        ...  for name, call_id in [("add", "c1"), ("add", "c1"), ("shout", "c2")]]
        ['add', None, 'shout']
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
        name = _get(function, "name")
        index = _get(raw, "index")
        call_id = _get(raw, "id") or None
        if named is not None and index is not None:
            known = named.get(index, _NO_CALL)
            same_call = known is not _NO_CALL and (not call_id or not known or call_id == known)
            if same_call:
                if call_id and not known:
                    named[index] = call_id
                if name:
                    name = None
            elif name:
                named[index] = call_id
        chunks.append(
            tool_call_chunk(
                name=name, args=_get(function, "arguments"), id=_get(raw, "id"), index=index
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
