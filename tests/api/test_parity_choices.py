"""A streamed call asking for several choices (``n > 1``): the chunks are litellm's, and the
answer policyroute assembles (``stream.result.response``, and what its receipt charges) is
the unstreamed answer, one message per choice.

litellm's own ``stream_chunk_builder`` merges every choice's deltas into one message (the
text of ``n=2`` reads "oneone two two"); the chunks a caller gets are passed on as litellm
sends them, so the caller's own ``stream_chunk_builder(chunks)`` gives what it gives on
litellm's stream.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import litellm
import pytest

import policyroute
from policyroute.testing import FakeProvider, RawStream, Reply, ToolCall, Usage

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello there"}]
TEXT = "one two three"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"x": {"type": "string"}}},
        },
    }
    for name in ("look", "fetch")
]


@pytest.fixture
def fp(served: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> str:
    """The policy's text; the fake answers ``TEXT`` with usage 7 in, 3 out."""
    monkeypatch.setenv("PR_CHOICES_KEY", "sk-test")
    served.set_default("gpt-4o-mini", Reply(text=TEXT, usage=Usage(prompt=7, completion=3)))
    return f"""
policyroute: 1
name: parity-choices
models:
  n:
    model: openai/gpt-4o-mini
    api_base: {served.openai_base}
    api_key: ${{PR_CHOICES_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: n
receipts: {{sink: jsonl, path: receipts.jsonl}}
"""


def _choices(response: Any) -> list[tuple[int, str | None, str | None]]:
    return [(c.index, c.message.content, c.finish_reason) for c in response.choices]


def _tool_calls(response: Any) -> list[list[tuple[str, str]]]:
    return [
        [(t.function.name, t.function.arguments) for t in c.message.tool_calls or ()]
        for c in response.choices
    ]


def _calls(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "call"]


def _charged(call: dict[str, Any]) -> tuple[int, int, str, bool]:
    return call["input_tokens"], call["output_tokens"], call["cost"], call["usage_estimated"]


def test_the_streamed_answer_of_two_choices_is_the_unstreamed_one(fp: str, tmp_path: Path) -> None:
    whole = policyroute.completion(policy=fp, messages=MESSAGES, n=2)
    stream = policyroute.completion(policy=fp, messages=MESSAGES, n=2, stream=True)
    chunks = list(stream)
    assert stream.result is not None
    assembled = stream.result.response
    assert _choices(whole) == [(0, TEXT, "stop"), (1, TEXT, "stop")]
    assert _choices(assembled) == _choices(whole)
    assert assembled.usage.prompt_tokens == whole.usage.prompt_tokens == 7
    assert assembled.usage.completion_tokens == whole.usage.completion_tokens == 3
    unstreamed, streamed = _calls(tmp_path)
    assert _charged(streamed) == _charged(unstreamed)
    # The caller's chunks are litellm's: both choices' deltas, interleaved.
    assert {c.choices[0].index for c in chunks if c.choices} == {0, 1}


def test_an_async_stream_of_two_choices_assembles_both(fp: str) -> None:
    async def run() -> Any:
        stream = await policyroute.acompletion(policy=fp, messages=MESSAGES, n=2, stream=True)
        async for _ in stream:
            pass
        assert stream.result is not None
        return stream.result.response

    assert _choices(asyncio.run(run())) == [(0, TEXT, "stop"), (1, TEXT, "stop")]


def test_each_streamed_choice_keeps_its_own_tool_calls(
    fp: str, provider: FakeProvider, tmp_path: Path
) -> None:
    calls = (ToolCall("look", {"x": "1"}), ToolCall("fetch", {"x": "2"}))
    provider.set_default(
        "gpt-4o-mini", Reply(tool_calls=calls, usage=Usage(prompt=7, completion=9))
    )
    whole = policyroute.completion(policy=fp, messages=MESSAGES, tools=TOOLS, n=2)
    stream = policyroute.completion(policy=fp, messages=MESSAGES, tools=TOOLS, n=2, stream=True)
    list(stream)
    assert stream.result is not None
    assembled = stream.result.response
    expected = [[("look", '{"x": "1"}'), ("fetch", '{"x": "2"}')]] * 2
    assert _tool_calls(whole) == expected
    assert _tool_calls(assembled) == expected
    assert [c.finish_reason for c in assembled.choices] == ["tool_calls", "tool_calls"]


def _delta(index: int, content: str | None, finish: str | None = None) -> str:
    delta = {} if content is None else {"role": "assistant", "content": content}
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    return json.dumps({**chunk, "choices": [choice]})


def test_choices_of_different_text_and_no_usage_are_counted_apart(
    fp: str, provider: FakeProvider, tmp_path: Path
) -> None:
    # No usage from the provider: the answer is counted locally, each choice's text once
    # (in the order of the choices, not as the deltas interleaved).
    events = [
        _delta(0, "alpha"),
        _delta(1, "gamma"),
        _delta(0, " beta"),
        _delta(1, " delta epsilon zeta"),
        _delta(0, None, "length"),
        _delta(1, None, "stop"),
    ]
    provider.script("gpt-4o-mini", RawStream(events, done=True))
    stream = policyroute.completion(policy=fp, messages=MESSAGES, n=2, stream=True)
    list(stream)
    assert stream.result is not None
    assembled = stream.result.response
    texts = [c.message.content for c in assembled.choices]
    assert texts == ["alpha beta", "gamma delta epsilon zeta"]
    assert assembled.choices[0].finish_reason == "length"
    (call,) = _calls(tmp_path)
    assert call["usage_estimated"] is True
    answer = "".join(texts)
    counted = litellm.token_counter(
        model="openai/gpt-4o-mini", text=answer, count_response_tokens=True
    )
    assert call["output_tokens"] == counted
