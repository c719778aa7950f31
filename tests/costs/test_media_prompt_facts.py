"""``prompt_facts`` answers in one pass what the worst-case estimate used to ask in three
(``has_media``, ``has_audio`` and the cache-write lifetime): the same answers, over every
shape of message a caller sends.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from policyroute.costs.estimate import cache_write_ttl, count_input_tokens
from policyroute.costs.media import PromptFacts, has_audio, has_media, prompt_facts

FIVE = {"type": "ephemeral"}
FIVE_EXPLICIT = {"type": "ephemeral", "ttl": "5m"}
HOUR = {"type": "ephemeral", "ttl": "1h"}
WAV = {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}
VIDEO = {"type": "file", "file": {"file_data": "data:video/mp4;base64,AAAA"}}
AUDIO_FILE = {"type": "file", "file": {"file_data": "data:audio/mp3;base64,AAAA"}}
PDF = {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA"}}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
ANTHROPIC_IMAGE = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
}


def _text(text: str, mark: Any = None) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": text}
    if mark is not None:
        part["cache_control"] = mark
    return part


MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "plain text"},
    {"role": "system", "content": "cached system", "cache_control": HOUR},
    {"role": "system", "content": "cached briefly", "cache_control": FIVE},
    {"role": "user", "content": [_text("parts"), IMAGE]},
    {"role": "user", "content": [_text("listen"), WAV]},
    {"role": "user", "content": [VIDEO, _text("watch")]},
    {"role": "user", "content": [AUDIO_FILE]},
    {"role": "user", "content": [PDF, ANTHROPIC_IMAGE]},
    {"role": "user", "content": [_text("a", FIVE_EXPLICIT), _text("b")]},
    {"role": "user", "content": [_text("a", HOUR), VIDEO]},
    {"role": "user", "content": [_text("a", None)]},
    {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": None}]},
    {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": "1h"}]},
    {"role": "assistant", "content": None},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    },
    {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t2", "name": "f", "input": {}}],
        "tool_calls": [{"id": "t2", "function": {"name": "f"}, "cache_control": HOUR}],
    },
    {"role": "tool", "tool_call_id": "t1", "content": "42"},
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t2", "content": "ok", "cache_control": FIVE}
        ],
    },
    {"role": "user", "content": ["not a mapping", 7, None]},
    {"role": "user", "content": [{"type": "input_audio", "input_audio": "not a mapping"}]},
    {"role": "user"},
]
TOOLS: list[Any] = [
    None,
    [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    [{"type": "function", "function": {"name": "f"}, "cache_control": FIVE}],
    [{"name": "g", "input_schema": {}, "cache_control": HOUR}],
    ["not a mapping"],
]


def _reference_ttl(messages: Sequence[Mapping[str, Any]], tools: Any) -> str | None:
    """The lifetime as it was read before, in its own pass over messages and tools."""

    def marks(item: Mapping[str, Any]) -> Iterator[Any]:
        if "cache_control" in item:
            yield item["cache_control"]
        for key in ("content", "tool_calls"):
            blocks = item.get(key)
            if isinstance(blocks, list):
                for block in blocks:
                    if isinstance(block, Mapping) and "cache_control" in block:
                        yield block["cache_control"]

    longest = None
    for item in [*messages, *(tools or [])]:
        if not isinstance(item, Mapping):
            continue
        for mark in marks(item):
            if isinstance(mark, Mapping) and mark.get("ttl") == "1h":
                return "1h"
            longest = "5m"
    return longest


def _prompts() -> Iterator[tuple[list[dict[str, Any]], Any]]:
    for size in (0, 1, 2):
        for chosen in itertools.combinations(MESSAGES, size):
            for tools in TOOLS:
                yield list(chosen), tools
    rng = random.Random(20261122)
    for _ in range(400):
        sample = rng.sample(MESSAGES, rng.randint(3, len(MESSAGES)))
        yield sample, rng.choice(TOOLS)


def test_one_pass_gives_what_the_three_scans_gave() -> None:
    seen: set[PromptFacts] = set()
    for messages, tools in _prompts():
        facts = prompt_facts(messages, tools)
        assert facts == PromptFacts(
            media=has_media(messages),
            audio=has_audio(messages),
            cache_ttl=_reference_ttl(messages, tools),  # type: ignore[arg-type]
        ), (messages, tools)
        assert cache_write_ttl(messages, tools) == facts.cache_ttl
        seen.add(facts)
    # Every combination the estimate distinguishes came up.
    assert {(f.media, f.audio) for f in seen} == {(False, False), (True, False), (True, True)}
    assert {f.cache_ttl for f in seen} == {None, "5m", "1h"}


def test_media_in_tools_is_not_media_of_the_prompt() -> None:
    tools = [{"name": "f", "content": [WAV]}]
    assert prompt_facts([], tools) == PromptFacts()
    assert prompt_facts([{"role": "user", "content": "hi"}], tools).audio is False


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": [_text("listen"), WAV]}],
        [{"role": "user", "content": "hi", "cache_control": HOUR}],
    ],
)
def test_count_input_tokens_counts_the_same_with_facts_read_before(
    messages: list[dict[str, Any]],
) -> None:
    def counter(**kwargs: Any) -> int:
        return 10 * len(kwargs["messages"])

    unread = count_input_tokens("openai/gpt-4o", messages, None, counter)
    facts = prompt_facts(messages)
    assert count_input_tokens("openai/gpt-4o", messages, None, counter, facts=facts) == unread
