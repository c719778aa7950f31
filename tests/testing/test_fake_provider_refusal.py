"""``Reply(refusal=...)``: OpenAI's refusal as OpenAI sends it, unstreamed and streamed, and
Claude's (text ended with ``stop_reason: "refusal"``) on the Anthropic wire."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from policyroute.testing import FakeProvider, Reply, ToolCall

REFUSAL = "I can't help with that."
USER = [{"role": "user", "content": "help me"}]


def _openai(fp: FakeProvider, stream: bool) -> httpx.Response:
    body = {"model": "gpt-r", "messages": USER, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return httpx.post(fp.openai_base + "/chat/completions", json=body, timeout=5)


def _events(response: httpx.Response) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :])
        for line in response.text.splitlines()
        if line.startswith("data: {")
    ]


def test_openai_unstreamed_refusal_is_the_message_refusal(fp: FakeProvider) -> None:
    fp.set_default("gpt-r", Reply(refusal=REFUSAL))
    body = _openai(fp, stream=False).json()
    (choice,) = body["choices"]
    assert choice["message"]["content"] is None
    assert choice["message"]["refusal"] == REFUSAL
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 5  # the refusal's words


def test_openai_streamed_refusal_is_delta_refusal_fragments(fp: FakeProvider) -> None:
    fp.set_default("gpt-r", Reply(refusal=REFUSAL))
    events = _events(_openai(fp, stream=True))
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    assert deltas[0] == {"role": "assistant", "content": None, "refusal": ""}
    fragments = [d["refusal"] for d in deltas[1:] if "refusal" in d]
    assert "".join(fragments) == REFUSAL
    assert len(fragments) > 1
    assert not any(d.get("content") for d in deltas)
    finishes = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert finishes[-1] == "stop"
    assert events[-1]["usage"]["completion_tokens"] == 5


def test_anthropic_refusal_is_text_with_stop_reason_refusal(fp: FakeProvider) -> None:
    fp.set_default("claude-r", Reply(refusal=REFUSAL))
    body = {"model": "claude-r", "max_tokens": 100, "messages": USER}
    answer = httpx.post(fp.anthropic_base + "/v1/messages", json=body, timeout=5).json()
    assert answer["content"] == [{"type": "text", "text": REFUSAL}]
    assert answer["stop_reason"] == "refusal"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"refusal": ""}, "non-empty"),
        ({"refusal": REFUSAL, "text": "hi"}, "instead of content"),
        ({"refusal": REFUSAL, "tool_calls": [ToolCall("f", {})]}, "instead of content"),
    ],
)
def test_a_refusal_goes_alone(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Reply(**kwargs)
