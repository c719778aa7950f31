"""Messages and tools as ``litellm.completion`` takes them, made plain for policyroute's checks.

litellm takes pydantic message objects beside mappings: the answer's own message
(``response.choices[0].message``, litellm's ``Message``) appended to the history is how its
tool loops are written, and the OpenAI SDK's ``ChatCompletionMessage`` and tool-call objects
inside a message mapping are taken too. litellm reads each as
``model_dump(exclude_none=True)``; so does :func:`plain_messages`, before the messages are
checked, routed, priced and sent. Tools may be pydantic objects as well (the OpenAI SDK's
``ChatCompletionFunctionTool``), which litellm sends as their ``model_dump()``, as
:func:`plain_tools` makes them.

Example:
    >>> from litellm.types.utils import Message
    >>> plain_messages([{"role": "user", "content": "hi"}, Message(content="hello")])
    [{'role': 'user', 'content': 'hi'}, {'content': 'hello', 'role': 'assistant'}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["plain_messages", "plain_tools"]


def plain_messages(messages: Sequence[Any]) -> Sequence[Any]:
    """``messages`` with each pydantic message, and each pydantic tool call inside a message
    mapping, replaced by the dict litellm makes of it; the caller's list and mappings are left
    as they are. Anything else is returned unchanged, for the message checks to judge.

    Example:
        >>> history = [{"role": "user", "content": "hi"}]
        >>> plain_messages(history) is history
        True
    """
    if all(isinstance(m, Mapping) and not _holds_call_objects(m) for m in messages):
        return messages  # the common case: nothing to convert, nothing copied
    return [_plain(message) for message in messages]


def plain_tools(tools: Any) -> Any:
    """``tools`` with each pydantic tool replaced by its ``model_dump()``, None fields kept, as
    litellm sends it; anything else is returned unchanged, for the tool checks to judge.

    Example:
        >>> tools = [{"type": "function", "function": {"name": "f"}}]
        >>> plain_tools(tools) is tools
        True
    """
    if isinstance(tools, (str, bytes)) or not isinstance(tools, Sequence):
        return tools
    if all(_dump_of(tool) is None for tool in tools):
        return tools
    return [tool if (dump := _dump_of(tool)) is None else dump() for tool in tools]


def _plain(message: Any) -> Any:
    if isinstance(message, Mapping):
        if not _holds_call_objects(message):
            return message
        plain = dict(message)
        plain["tool_calls"] = [_dumped(call) for call in message["tool_calls"]]
        return plain
    return _dumped(message)


def _holds_call_objects(message: Mapping[str, Any]) -> bool:
    calls = message.get("tool_calls")
    if isinstance(calls, (str, bytes)) or not isinstance(calls, Sequence):
        return False
    return any(not isinstance(call, Mapping) and _dump_of(call) is not None for call in calls)


def _dumped(value: Any) -> Any:
    dump = _dump_of(value)
    return value if dump is None else dump(exclude_none=True)


def _dump_of(value: Any) -> Any:
    # pydantic v2 models (litellm's and the OpenAI SDK's types) without importing pydantic:
    # a message object is rare, and this module must stay cheap to import.
    if isinstance(value, Mapping):
        return None
    dump = getattr(value, "model_dump", None)
    return dump if callable(dump) else None
