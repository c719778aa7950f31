"""Which deployments can take the provider's own tools a call offers.

A provider's own tool (a web search, a code sandbox, a computer the model drives) is written
in that provider's shape, and litellm translates only some shapes for other providers. Sent
to a deployment that cannot take it, the call fails as a bad request, which ends the call
instead of falling over to the deployment that would have answered. Routing skips such a
deployment, as it skips one lacking tool calling.

What each provider family takes, as litellm (1.106) sends it:

- **Claude** (``anthropic/``; ``bedrock/``, ``vertex_ai/`` and ``azure_ai/`` models named
  ``claude``, which litellm writes in Anthropic's format): Anthropic's typed tools
  (``web_search_YYYYMMDD``, ``web_fetch_*``, ``code_execution_*``, ``computer_*``,
  ``bash_*``, ``text_editor_*``, ``memory_*``, ``tool_search_tool_*``, ``advisor_*``, an
  MCP server ``{"type": "url"}``); not OpenAI's typed tools (litellm reads ``web_search``
  as Anthropic's, which needs a version and a name, and refuses the others) nor Gemini's.
- **OpenAI** (``openai/``, ``azure/``, a bare ``gpt-*`` or ``o1``/``o3``/``o4`` name):
  OpenAI's typed tools (``web_search``, ``web_search_preview``, ``file_search``,
  ``code_interpreter``, ``mcp``, ...), passed on unchanged; not Anthropic's nor Gemini's.
- **Gemini** (``gemini/``, ``vertex_ai/`` models named ``gemini``, a bare ``gemini-*``
  name): Gemini's tools written by their key (``{"google_search": {}}``,
  ``{"code_execution": {}}``, ...) and ``{"type": "computer_use"}``, and OpenAI's
  ``web_search``/``web_search_preview``, which litellm turns into Google Search; not
  Anthropic's typed tools (litellm would declare a function of that name) nor OpenAI's
  other ones (dropped).

Where it is not sure, nothing is excluded and the call goes as before: a deployment of
another family (xAI, Mistral, a local server...), an ``openai/`` deployment of a Claude or
Gemini model (an OpenAI-compatible proxy), a tool shape not listed here, and the
cases litellm passes on without a clear answer (``mcp`` to a Claude deployment outside
Anthropic's own API).

Example:
    >>> provider_tools([{"type": "web_search_20250305", "name": "web_search"}])
    ('web_search_20250305',)
    >>> refused_tools("openai", ("web_search_20250305",))
    ('web_search_20250305',)
    >>> refused_tools("anthropic", ("web_search_20250305",))
    ()
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from policyroute._thinking import anthropic_format, provider_and_name

if TYPE_CHECKING:
    from policyroute.policy.model import ModelSpec

__all__ = ["Family", "deployment_family", "provider_tools", "refused_tools"]

Family = Literal["anthropic", "openai", "gemini"]
"""A provider family whose own tools routing knows."""

# Tools the caller defines and runs, in any provider's form.
_FUNCTION_TYPES: Final = frozenset({"function", "custom"})
_FUNCTION_KEYS: Final = frozenset({"function", "name", "parameters", "input_schema"})

# Anthropic's typed tools carry their version as a date: ``web_search_20250305``.
_ANTHROPIC_TYPED: Final = re.compile(
    r"(?:web_search|web_fetch|code_execution|computer|bash|text_editor|memory"
    r"|tool_search_tool_(?:regex|bm25)|advisor)_\d{8}"
)
_ANTHROPIC_MCP: Final = "url"
_OPENAI_TYPED: Final = frozenset(
    {
        "web_search",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "image_generation",
        "local_shell",
        "computer_use_preview",
        "mcp",
    }
)
# OpenAI's typed tools that litellm maps to Gemini's Google Search.
_GEMINI_MAPPED_OPENAI: Final = frozenset({"web_search", "web_search_preview"})
_GEMINI_KEYED: Final = frozenset(
    {
        "googleSearch",
        "google_search",
        "googleSearchRetrieval",
        "google_search_retrieval",
        "enterpriseWebSearch",
        "enterprise_web_search",
        "urlContext",
        "url_context",
        "codeExecution",
        "code_execution",
        "googleMaps",
        "google_maps",
        "computerUse",
        "computer_use",
    }
)
_GEMINI_TYPED: Final = frozenset({"computer_use"})
# Bare model names litellm sends to OpenAI.
_OPENAI_BARE: Final = re.compile(r"(?:gpt-|chatgpt-|o[1-9](?:-|$))")


def deployment_family(spec: ModelSpec) -> Family | None:
    """The family whose provider tools ``spec``'s deployment takes, ``None`` when unknown.

    Example:
        >>> from policyroute.policy.model import ModelSpec
        >>> deployment_family(ModelSpec(alias="c", model="vertex_ai/claude-sonnet-4-5"))
        'anthropic'
        >>> deployment_family(ModelSpec(alias="m", model="mistral/mistral-large-latest"))
    """
    if anthropic_format(spec):
        return "anthropic"
    provider, name = provider_and_name(spec)
    lowered = name.lower()
    if provider == "openai" and ("claude" in lowered or "gemini" in lowered):
        # an OpenAI-compatible proxy (a LiteLLM proxy...) in front of another provider's
        # model may well take that provider's tools
        return None
    if provider in ("openai", "azure") or (not provider and _OPENAI_BARE.match(lowered)):
        return "openai"
    if provider == "gemini" or (provider in ("vertex_ai", "") and lowered.startswith("gemini")):
        return "gemini"
    return None


def _tool_kind(tool: Any) -> str | None:
    """The name of ``tool`` when it is a provider's own tool, ``None`` when it is the
    caller's function (or not a tool mapping at all)."""
    if not isinstance(tool, Mapping):
        return None
    kind = tool.get("type")
    if kind is not None:
        return kind if isinstance(kind, str) and kind not in _FUNCTION_TYPES else None
    if _FUNCTION_KEYS & tool.keys():
        return None
    keys = [str(key) for key in tool if key != "cache_control"]
    return keys[0] if len(keys) == 1 else None


def provider_tools(tools: Iterable[Any] | None) -> tuple[str, ...]:
    """The provider tools among a call's ``tools``, each named once (its ``type``, or its
    key for a Gemini tool written by its key), in the order given.

    Example:
        >>> provider_tools([{"type": "function", "function": {"name": "f"}},
        ...                 {"google_search": {}}])
        ('google_search',)
    """
    found: dict[str, None] = {}
    for tool in tools or ():
        kind = _tool_kind(tool)
        if kind is not None:
            found[kind] = None
    return tuple(found)


def _accepts(family: Family, kind: str) -> bool:
    anthropic = kind == _ANTHROPIC_MCP or _ANTHROPIC_TYPED.fullmatch(kind) is not None
    gemini = kind in _GEMINI_KEYED or kind in _GEMINI_TYPED
    openai = kind in _OPENAI_TYPED
    if family == "anthropic":
        # litellm maps OpenAI's ``mcp`` to an MCP server for Anthropic's own API; whether
        # Bedrock takes it is not clear, so it is kept.
        return not (gemini or (openai and kind != "mcp"))
    if family == "openai":
        return not (anthropic or gemini)
    return not (anthropic or (openai and kind not in _GEMINI_MAPPED_OPENAI))


def refused_tools(family: Family | None, kinds: Iterable[str]) -> tuple[str, ...]:
    """The tools among ``kinds`` (from :func:`provider_tools`) a deployment of ``family``
    cannot take; empty when it can take them all or its family is unknown.

    Example:
        >>> refused_tools("gemini", ("web_search", "file_search"))
        ('file_search',)
        >>> refused_tools(None, ("google_search",))
        ()
    """
    if family is None:
        return ()
    return tuple(kind for kind in kinds if not _accepts(family, kind))
