"""Which tools of a call the provider runs itself, as litellm sends them (one pure function)."""

from __future__ import annotations

from typing import Any

import pytest

from policyroute.costs.server_tools import server_tools

FUNCTION = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}


@pytest.mark.parametrize(
    ("tool", "name"),
    [
        # Anthropic's server tools, by their versioned type.
        (
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            "web_search_20250305",
        ),
        ({"type": "web_fetch_20250910", "name": "web_fetch"}, "web_fetch_20250910"),
        ({"type": "code_execution_20250825", "name": "code_execution"}, "code_execution_20250825"),
        ({"type": "tool_search_tool_regex_20251119"}, "tool_search_tool_regex_20251119"),
        ({"type": "url", "url": "https://mcp.example/sse", "name": "docs"}, "url"),
        # OpenAI's built-in tools (litellm prices web_search and web_search_preview per search).
        ({"type": "web_search_preview", "search_context_size": "low"}, "web_search_preview"),
        ({"type": "web_search"}, "web_search"),
        ({"type": "file_search", "vector_store_ids": ["vs_1"]}, "file_search"),
        ({"type": "code_interpreter"}, "code_interpreter"),
        ({"type": "mcp", "server_url": "https://mcp.example"}, "mcp"),
        # Gemini's grounding tools, written by their key.
        ({"google_search": {}}, "google_search"),
        ({"googleSearch": {}}, "googleSearch"),
        ({"googleSearchRetrieval": {}}, "googleSearchRetrieval"),
        ({"url_context": {}}, "url_context"),
        ({"code_execution": {}}, "code_execution"),
        ({"googleMaps": {}}, "googleMaps"),
        # A type nobody knows yet: counted, so that the bound errs high.
        ({"type": "image_generation_2027"}, "image_generation_2027"),
    ],
)
def test_a_tool_the_provider_runs_is_server_side(tool: dict[str, Any], name: str) -> None:
    assert server_tools([FUNCTION, tool], {}) == (name,)


@pytest.mark.parametrize(
    "tool",
    [
        FUNCTION,
        {"type": "custom", "name": "grammar", "format": {"type": "text"}},
        {"name": "pick", "description": "Pick one", "input_schema": {"type": "object"}},
        {"name": "legacy", "parameters": {"type": "object"}},
        {"name": "bare"},
        # Provider-defined tools that the caller itself runs.
        {"type": "computer_20250124", "name": "computer", "display_width_px": 1024},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        {"type": "memory_20250818", "name": "memory"},
        {"type": "computer_use_preview", "display_width": 1024},
        {"type": "computer_use"},
        {"function_declarations": [{"name": "f"}]},
        {"computerUse": {}},
        "not a mapping",
    ],
)
def test_a_tool_the_caller_runs_is_not(tool: Any) -> None:
    assert server_tools([tool], {}) == ()


def test_web_search_options_offers_a_search_whatever_its_settings() -> None:
    assert server_tools(None, {"web_search_options": {}}) == ("web_search_options",)
    assert server_tools([], {"web_search_options": {"search_context_size": "high"}}) == (
        "web_search_options",
    )
    assert server_tools(None, {"web_search_options": None}) == ()


def test_tools_in_the_params_count_as_well_and_each_is_named_once() -> None:
    search = {"type": "web_search_20250305", "name": "web_search"}
    params = {"tools": [search, {"google_search": {}}], "web_search_options": {}}
    assert server_tools([search], params) == (
        "web_search_options",
        "web_search_20250305",
        "google_search",
    )


def test_no_tools_offer_none() -> None:
    assert server_tools(None, {}) == ()
    assert server_tools([FUNCTION], {"temperature": 0}) == ()
