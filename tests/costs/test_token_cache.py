"""Prompt token counts kept across a conversation's turns equal litellm's own count."""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from policyroute._lazy import import_litellm
from policyroute.costs import estimate
from policyroute.costs.estimate import count_input_tokens
from policyroute.costs.image_families import image_family
from policyroute.costs.images import image_tokens, without_images
from policyroute.costs.media import countable
from policyroute.costs.token_cache import PrefixCounts, freeze, message_key, tools_key
from policyroute.errors import RequestError

MODELS = ("gpt-4o-mini", "anthropic/claude-sonnet-4-5-20250929", "custom/unknown-model")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City"},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the web",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    },
]

POOL: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a careful assistant."},
    {"role": "developer", "content": "Answer in French."},
    {"role": "user", "content": "What's the weather in Paris? " * 20, "name": "ann"},
    {"role": "user", "content": ""},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21C"},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "and this picture?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ],
    },
    {"role": "assistant", "content": "It is sunny.", "name": "bot"},
    {
        "role": "user",
        "content": [{"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}}],
    },
]


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    estimate._COUNTS.clear()
    yield
    estimate._COUNTS.clear()


def exact(model: str, messages: Sequence[Mapping[str, Any]], tools: Any) -> int:
    # litellm's count of what is sent: tool-call names and ids too (costs.media.countable),
    # images bounded by their family instead (costs.images).
    view, opaque = countable(without_images(messages))
    opaque += image_tokens(messages, image_family(model))
    return opaque + int(
        import_litellm().token_counter(
            model=model if model != "custom/unknown-model" else "gpt-4o",
            messages=list(view),
            tools=list(tools) if tools else None,
            use_default_image_token_count=True,
        )
    )


def test_growing_conversations_count_exactly_as_litellm() -> None:
    rng = random.Random(7)
    for _ in range(40):
        model = rng.choice(MODELS)
        tools = rng.choice([None, TOOLS[:1], TOOLS])
        conversation: list[dict[str, Any]] = []
        for _turn in range(rng.randint(1, 6)):
            conversation += [dict(rng.choice(POOL)) for _ in range(rng.randint(1, 3))]
            counted = count_input_tokens(model, conversation, tools)
            assert counted == exact(model, conversation, tools), (model, conversation, tools)
    assert len(estimate._COUNTS) > 0


def test_a_conversation_that_branches_counts_exactly() -> None:
    # An edited earlier turn shares only part of its history with what was counted.
    base = [dict(POOL[0]), dict(POOL[2]), dict(POOL[7])]
    count_input_tokens("gpt-4o-mini", base, TOOLS)
    branched = [*base[:2], {"role": "assistant", "content": "Something else."}, dict(POOL[3])]
    assert count_input_tokens("gpt-4o-mini", branched, TOOLS) == exact(
        "gpt-4o-mini", branched, TOOLS
    )


def test_later_turns_tokenize_only_their_new_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    history = [{"role": "user", "content": f"message {i} " * 50} for i in range(30)]
    turn = [*history, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "next"}]
    expected = exact("gpt-4o-mini", turn, None)
    litellm = import_litellm()
    real = litellm.token_counter
    seen: list[int] = []

    def spy(**kwargs: Any) -> int:
        seen.append(len(kwargs["messages"]))
        return int(real(**kwargs))

    monkeypatch.setattr(litellm, "token_counter", spy)
    count_input_tokens("gpt-4o-mini", history, None)
    assert seen == [30]
    seen.clear()
    assert count_input_tokens("gpt-4o-mini", turn, None) == expected
    # The two new messages, and once per model the empty list the identity needs.
    assert sorted(seen) == [0, 2]
    seen.clear()
    assert count_input_tokens("gpt-4o-mini", turn, None) == expected
    assert seen == []


def test_a_custom_counter_counts_every_prompt_whole() -> None:
    calls: list[int] = []

    def counter(**kwargs: Any) -> int:
        calls.append(len(kwargs["messages"]))
        return 100

    messages = [{"role": "user", "content": "hi"}]
    for _ in range(3):
        assert count_input_tokens("gpt-4o-mini", messages, None, counter) == 100
    assert calls == [1, 1, 1]
    assert len(estimate._COUNTS) == 0


def test_entries_are_bounded_least_recently_used_first() -> None:
    counts = PrefixCounts(max_entries=3)

    def words(messages: Sequence[Mapping[str, Any]]) -> int:
        return 3 + sum(len(str(m["content"]).split()) for m in messages)

    lists = [[{"role": "user", "content": f"text {i}"}] for i in range(4)]
    for messages in lists[:3]:
        counts.count("m", messages, words)
    counts.count("m", lists[0], words)  # now the most recently used
    counts.count("m", lists[3], words)
    assert len(counts) == 3
    seen: list[int] = []

    def spy(messages: Sequence[Mapping[str, Any]]) -> int:
        seen.append(len(messages))
        return words(messages)

    counts.count("m", lists[0], spy)
    assert seen == []  # kept
    counts.count("m", lists[1], spy)
    assert seen == [1]  # evicted, counted again


def test_keys_tell_apart_what_tokenizes_differently() -> None:
    assert message_key({"role": "user", "content": "1"}) != message_key(
        {"role": "assistant", "content": "1"}
    )
    assert freeze({"a": 1}) != freeze({"a": True}) != freeze({"a": 1.0})
    assert freeze({"a": [1, 2]}) != freeze({"a": [2, 1]})
    # litellm counts tool inputs and schemas as text, whose tokens follow the key order.
    assert freeze({"a": "x", "b": "y"}) != freeze({"b": "y", "a": "x"})
    assert message_key({"role": "user", "content": "x"}) != message_key(
        {"role": "user", "content": "x", "name": "ann"}
    )


def test_key_order_counts_as_litellm_counts_it() -> None:
    # litellm counts an Anthropic-format tool input as its text: the key order changes it.
    def turn(tool_input: dict[str, str]) -> list[dict[str, Any]]:
        block = {"type": "tool_use", "id": "t1", "name": "get_weather", "input": tool_input}
        return [{"role": "assistant", "content": [block]}]

    first, second = turn({"city": "Paris", "unit": ""}), turn({"unit": "", "city": "Paris"})
    assert exact("gpt-4o-mini", first, None) != exact("gpt-4o-mini", second, None)
    for messages in (first, second):
        assert count_input_tokens("gpt-4o-mini", messages, None) == exact(
            "gpt-4o-mini", messages, None
        )


def test_kept_characters_are_bounded() -> None:
    counts = PrefixCounts(max_chars=10_000)

    def fixed(messages: Sequence[Mapping[str, Any]]) -> int:
        return 3 + 85 * len(messages)

    conversation: list[dict[str, Any]] = []
    for turn in range(10):
        # Each turn's data URL is a new string, as the conversion builds it on every call.
        image = "data:image/png;base64," + "A" * 4_000
        conversation = [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}]},
            {"role": "user", "content": f"turn {turn}"},
        ]
        counts.count("m", conversation, fixed)
        assert counts.chars <= 10_000
    assert 1 <= len(counts) <= 2
    # A single prompt larger than the bound is counted but not kept.
    counts.count("m", [{"role": "user", "content": "x" * 20_000}], fixed)
    assert counts.chars <= 10_000


def test_messages_that_cannot_be_keyed_are_counted_directly() -> None:
    counts = PrefixCounts()
    odd = [{"role": "user", "content": [{"type": "text", "text": "hi", "extra": object()}]}]
    assert counts.count("m", odd, lambda messages: 42) == 42
    assert len(counts) == 0


def test_threads_share_the_counts_safely() -> None:
    conversation = [dict(m) for m in POOL if m["role"] != "tool"]
    expected = [exact("gpt-4o-mini", conversation[:n], TOOLS) for n in range(1, len(conversation))]
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(
                [
                    count_input_tokens("gpt-4o-mini", conversation[:n], TOOLS)
                    for n in range(1, len(conversation))
                ]
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [expected] * 8


def test_tool_keys_tell_apart_what_tokenizes_differently() -> None:
    def schema(**properties: Any) -> list[dict[str, Any]]:
        params = {"type": "object", "properties": properties}
        return [{"type": "function", "function": {"name": "f", "parameters": params}}]

    keys = [
        tools_key(schema(a={"type": "integer", "default": 1})),
        tools_key(schema(a={"type": "integer", "default": 1.0})),
        tools_key(schema(a={"type": "integer", "default": True})),
        tools_key(schema(a={"type": "string"}, b={"type": "string"})),
        tools_key(schema(b={"type": "string"}, a={"type": "string"})),
    ]
    assert None not in keys
    assert len(set(keys)) == len(keys)
    assert tools_key(copy.deepcopy(TOOLS)) == tools_key(TOOLS)
    assert tools_key([{"type": "function", "function": {"name": object()}}]) is None


def test_a_rebuilt_tool_list_is_read_and_counted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # An agent sends the same tools on every call, as new objects: they are keyed by value.
    walks: list[int] = []
    walk = estimate.unreadable_tool_schema

    def spy(tools: Any) -> Any:
        walks.append(len(tools))
        return walk(tools)

    messages = [{"role": "user", "content": "weather?"}]
    expected = exact("gpt-4o-mini", messages, TOOLS)
    monkeypatch.setattr(estimate, "unreadable_tool_schema", spy)
    litellm = import_litellm()
    real = litellm.token_counter
    with_tools: list[int] = []

    def counter(**kwargs: Any) -> int:
        if kwargs.get("tools"):
            with_tools.append(len(kwargs["tools"]))
        return int(real(**kwargs))

    monkeypatch.setattr(litellm, "token_counter", counter)
    for _ in range(4):
        assert count_input_tokens("gpt-4o-mini", messages, copy.deepcopy(TOOLS)) == expected
    assert walks == [len(TOOLS)]
    assert with_tools == [len(TOOLS)]


def test_an_unreadable_tool_schema_is_refused_on_every_call() -> None:
    bad = copy.deepcopy(TOOLS)
    bad[0]["function"]["parameters"]["properties"]["city"] = "a city"
    messages = [{"role": "user", "content": "weather?"}]
    for _ in range(2):
        with pytest.raises(RequestError, match=r"properties\.city' must be a JSON schema mapping"):
            count_input_tokens("gpt-4o-mini", messages, bad)
    assert len(estimate._COUNTS) == 1  # the messages' count only: the tools were never counted
