"""Which tools of a request the provider runs itself, and bills beyond the tokens counted.

A server-side tool runs at the provider during the call: a web search is billed a fee per
search (litellm adds it to the call's cost from ``server_tool_use.web_search_requests`` or the
model's ``search_context_cost_per_query``), and what it finds or fetches is billed as input
tokens that no count made before the call can see. A worst case that prices only the prompt
and the output bound would be overspent by such a call.

What counts as server-side follows the tool shapes litellm sends to a provider's own tools:

- the ``web_search_options`` parameter (OpenAI's search models; litellm turns it into
  Anthropic's ``web_search`` tool, Gemini's ``googleSearch``, xAI's live search...);
- a tool whose ``type`` is neither a function (``function``, ``custom``) nor one of the
  provider-defined tools the caller runs itself (Anthropic's ``computer_*``, ``bash_*``,
  ``text_editor_*``, ``memory_*``; OpenAI's ``computer_use_preview``; Gemini's
  ``computer_use``): OpenAI's ``web_search``, ``web_search_preview``, ``file_search``,
  ``code_interpreter``, ``mcp``; Anthropic's ``web_search_*``, ``web_fetch_*``,
  ``code_execution_*``, ``tool_search_tool_*``, ``advisor_*``, MCP servers (``url``);
- a Gemini tool written by its key (``googleSearch``, ``google_search``,
  ``googleSearchRetrieval``, ``enterpriseWebSearch``, ``url_context``, ``code_execution``,
  ``googleMaps``...), anything but ``function_declarations`` and ``computerUse``.

A tool type policyroute does not know counts as server-side: the bound errs high.

Example:
    >>> server_tools([{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}], {})
    ('web_search_20250305',)
    >>> server_tools([{"type": "function", "function": {"name": "f"}}], {})
    ()
    >>> server_tools(None, {"web_search_options": {"search_context_size": "low"}})
    ('web_search_options',)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["server_tools"]

# Tools the caller defines and runs: the model only asks for them to be called.
_FUNCTION_TYPES = frozenset({"function", "custom"})
# Provider-defined tools that the caller runs (the provider fixes their schema, nothing more).
_CLIENT_RUN_TYPES = frozenset({"computer_use", "computer_use_preview"})
_CLIENT_RUN_PREFIXES = ("computer_", "bash_", "text_editor_", "memory_")
# Gemini tools written by their key that the caller runs.
_CLIENT_RUN_KEYS = frozenset(
    {"function_declarations", "functionDeclarations", "computerUse", "computer_use"}
)
# Keys that make an untyped tool a function tool (OpenAI's legacy and Anthropic's forms; a
# Gemini tool written by its key has no name).
_FUNCTION_KEYS = frozenset({"function", "name", "parameters", "input_schema"})


def _server_kind(tool: Mapping[str, Any]) -> str | None:
    """The name of ``tool`` when the provider runs it, ``None`` when the caller does."""
    kind = tool.get("type")
    if isinstance(kind, str):
        if kind in _FUNCTION_TYPES or kind in _CLIENT_RUN_TYPES:
            return None
        return None if kind.startswith(_CLIENT_RUN_PREFIXES) else kind
    if _FUNCTION_KEYS & tool.keys():
        return None
    keys = [str(k) for k in tool if k != "cache_control"]
    if not keys:
        return None
    if all(k in _CLIENT_RUN_KEYS for k in keys):
        return None
    return next(k for k in keys if k not in _CLIENT_RUN_KEYS)


def server_tools(tools: Iterable[Any] | None, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The server-side tools a call offers, each named once in the order given; empty when
    it offers none.

    ``tools`` are the call's tool definitions (a tool that is not a mapping, such as a
    LangChain tool not yet converted, is the caller's own); ``params`` its parameters, where
    ``web_search_options`` and a ``tools`` list the request does not carry are read.
    """
    found: dict[str, None] = {}
    if params.get("web_search_options") is not None:
        found["web_search_options"] = None
    listed = [tools, params.get("tools")]
    for group in listed:
        if group is None or isinstance(group, (str, bytes, Mapping)):
            continue
        for tool in group:
            if isinstance(tool, Mapping):
                kind = _server_kind(tool)
                if kind is not None:
                    found[kind] = None
    return tuple(found)
