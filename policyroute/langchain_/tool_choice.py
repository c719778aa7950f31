"""LangChain's tools and ``tool_choice`` in the one form litellm takes (OpenAI chat
completions), as ``ChatPolicyRoute.bind_tools`` binds them.

Example:
    >>> tool_choice_param("any", ["lookup"])
    'required'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from policyroute.errors import RequestError

__all__ = ["Tool", "bound_tools", "to_openai_tool", "tool_choice_param"]

Tool = Mapping[str, Any] | type | Callable[..., Any] | BaseTool
"""What ``bind_tools`` takes as a tool."""


def tool_choice_param(choice: Any, tool_names: Sequence[str]) -> Any:
    """LangChain's ``tool_choice`` in the OpenAI form litellm expects; ``None`` means omit.

    ``"any"`` and ``True`` force some tool (``"required"``; with a single tool ``True`` names
    it), ``"auto"``/``"none"``/``"required"`` pass through, a tool name forces that tool, and
    ``False``/``None`` send nothing. A dict may be in the OpenAI chat-completions, Responses
    or Anthropic form; a name it gives must be a bound tool. litellm translates the OpenAI
    form per provider (Anthropic: ``{"type": "any"}`` / ``{"type": "tool", "name": ...}``).

    Example:
        >>> tool_choice_param("lookup", ["lookup", "other"])
        {'type': 'function', 'function': {'name': 'lookup'}}
        >>> tool_choice_param({"type": "tool", "name": "lookup"}, ["lookup"])
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
        return _forced(choice, choice, tool_names)
    if isinstance(choice, Mapping):
        return _dict_choice(choice, tool_names)
    raise RequestError(f"unsupported tool_choice {choice!r}")


def _forced(name: Any, choice: Any, tool_names: Sequence[str]) -> dict[str, Any]:
    if name not in tool_names:
        raise RequestError(
            f"tool_choice {choice!r} names no bound tool (bound: {', '.join(tool_names)})"
        )
    return {"type": "function", "function": {"name": name}}


def _dict_choice(choice: Mapping[str, Any], tool_names: Sequence[str]) -> Any:
    # litellm takes only the chat-completions form and refuses the others after routing, so
    # the Anthropic (``{"type": "tool", "name": ...}``, ``{"type": "any"}``) and Responses
    # (``{"type": "function", "name": ...}``) forms users bring from other chat models are
    # mapped here, and a name is checked against the bound tools before anything is sent.
    kind = choice.get("type")
    if kind == "tool":
        return _forced(choice.get("name"), choice, tool_names)
    if kind == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
        return _forced(name, choice, tool_names)
    if kind == "any":
        return "required"
    if kind in ("auto", "none", "required"):
        return kind
    raise RequestError(
        f"unsupported tool_choice {dict(choice)!r}; use 'auto', 'none', 'any', a tool name,"
        ' or {"type": "function", "function": {"name": ...}}'
    )


def to_openai_tool(tool: Tool, *, strict: bool | None = None) -> dict[str, Any]:
    """A LangChain tool, pydantic model, function, or OpenAI/Anthropic tool dict as an
    OpenAI tool; a tool dict's ``cache_control`` is kept.

    Example:
        >>> to_openai_tool({"name": "pick", "description": "Pick one.",
        ...                 "input_schema": {"type": "object", "properties": {}},
        ...                 "cache_control": {"type": "ephemeral"}})["cache_control"]
        {'type': 'ephemeral'}
    """
    formatted = convert_to_openai_tool(tool, strict=strict)
    if isinstance(tool, Mapping) and tool.get("cache_control") is not None:
        formatted["cache_control"] = tool["cache_control"]
    return formatted


def bound_tools(
    tools: Sequence[Tool], tool_choice: Any, *, strict: bool | None = None
) -> dict[str, Any]:
    """The keywords ``bind_tools`` binds: ``tools`` as OpenAI tools and, unless it is to be
    omitted, ``tool_choice`` in OpenAI's form.

    Example:
        >>> sorted(bound_tools([{"name": "pick", "parameters": {}}], "any"))
        ['tool_choice', 'tools']
    """
    formatted = [to_openai_tool(tool, strict=strict) for tool in tools]
    bound: dict[str, Any] = {"tools": formatted}
    choice = tool_choice_param(tool_choice, [tool["function"]["name"] for tool in formatted])
    if choice is not None:
        bound["tool_choice"] = choice
    return bound
