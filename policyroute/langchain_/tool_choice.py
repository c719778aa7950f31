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

__all__ = [
    "Tool",
    "bound_tools",
    "is_provider_tool",
    "to_openai_tool",
    "tool_choice_param",
    "tool_name",
]

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


# Keys of a tool that carries its own schema (a function tool in some format, or a JSON
# schema): such a tool is converted, never passed on as a provider's own tool.
_SCHEMA_KEYS = frozenset({"function", "parameters", "input_schema", "properties"})
_FUNCTION_TYPES = frozenset({"function", "custom", "object"})
# Keys of a function tool or a JSON schema, never the one key of a Gemini tool.
_NAMED_KEYS = _SCHEMA_KEYS | {"name", "title", "description", "$defs", "definitions"}


def is_provider_tool(tool: Tool) -> bool:
    """Whether ``tool`` is a provider's own tool (OpenAI ``web_search_preview``, Anthropic
    ``web_search_20250305``, ``code_execution_...``, an MCP server...), which the provider
    runs itself and which is passed on unchanged.

    Example:
        >>> is_provider_tool({"type": "web_search_20250305", "name": "web_search"})
        True
        >>> is_provider_tool({"google_search": {}})  # Gemini's form: the tool's key alone
        True
        >>> is_provider_tool({"name": "pick", "input_schema": {"type": "object"}})
        False
    """
    if not isinstance(tool, Mapping):
        return False
    kind = tool.get("type")
    if kind is None:
        # Gemini's tools are written by their key (``{"google_search": {}}``,
        # ``{"code_execution": {}}``), which litellm maps; nothing else has that shape.
        keys = [key for key in tool if key != "cache_control"]
        return len(keys) == 1 and keys[0] not in _NAMED_KEYS and isinstance(tool[keys[0]], Mapping)
    return isinstance(kind, str) and kind not in _FUNCTION_TYPES and not _SCHEMA_KEYS & set(tool)


def to_openai_tool(tool: Tool, *, strict: bool | None = None) -> dict[str, Any]:
    """A LangChain tool, pydantic model, function, or OpenAI (chat or Responses) or Anthropic
    tool dict as an OpenAI chat-completions tool; a tool dict's ``cache_control`` is kept, and
    a provider's own tool (see :func:`is_provider_tool`) is passed on unchanged for litellm to
    map (Anthropic's server tools reach Claude as themselves).

    Example:
        >>> to_openai_tool({"name": "pick", "description": "Pick one.",
        ...                 "input_schema": {"type": "object", "properties": {}},
        ...                 "cache_control": {"type": "ephemeral"}})["cache_control"]
        {'type': 'ephemeral'}
        >>> to_openai_tool({"type": "function", "name": "f", "parameters": {}})["function"]
        {'name': 'f', 'parameters': {}}
    """
    if isinstance(tool, Mapping) and is_provider_tool(tool):
        # langchain-core would turn a named one (Anthropic's) into a function tool of that
        # name with no parameters, which the model would call instead of the provider.
        return dict(tool)
    formatted = convert_to_openai_tool(tool, strict=strict)
    if "function" not in formatted and formatted.get("type") == "function":
        # The Responses API's flat form, which langchain-core passes through as it is.
        flat = {k: v for k, v in formatted.items() if k not in ("type", "cache_control")}
        if strict is not None:
            flat["strict"] = strict
        formatted = {"type": "function", "function": flat}
    if isinstance(tool, Mapping) and tool.get("cache_control") is not None:
        formatted["cache_control"] = tool["cache_control"]
    return formatted


def tool_name(tool: Mapping[str, Any]) -> str | None:
    """The name a model calls a converted tool by (a provider tool's own ``name``, if any).

    Example:
        >>> tool_name({"type": "function", "function": {"name": "add"}})
        'add'
    """
    function = tool.get("function")
    name = function.get("name") if isinstance(function, Mapping) else tool.get("name")
    return name if isinstance(name, str) else None


def bound_tools(
    tools: Sequence[Tool], tool_choice: Any, *, strict: bool | None = None
) -> dict[str, Any]:
    """The keywords ``bind_tools`` binds: ``tools`` as OpenAI tools and, unless it is to be
    omitted, ``tool_choice`` in OpenAI's form.

    Tools sharing a name are passed on, as other LangChain chat models pass them (the
    standard tests bind a pydantic model beside its own JSON schema): the provider judges.

    Example:
        >>> sorted(bound_tools([{"name": "pick", "parameters": {}}], "any"))
        ['tool_choice', 'tools']
    """
    formatted = [to_openai_tool(tool, strict=strict) for tool in tools]
    names = [name for name in map(tool_name, formatted) if name is not None]
    bound: dict[str, Any] = {"tools": formatted}
    choice = tool_choice_param(tool_choice, names)
    if choice is not None:
        bound["tool_choice"] = choice
    return bound
