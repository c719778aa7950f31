"""An answer the provider finishes without any text is an answer when streamed too.

A stop sequence met at the answer's very start, or a reasoning model whose ``max_tokens`` all
went to its reasoning (finish reason ``length``), ends with no content. Unstreamed,
``policyroute.completion`` returns it as litellm does; streamed, it was a "malformed
response": retried, fallen over, counted against the deployment's breaker, and raised as
``AllCandidatesFailedError`` where litellm's own stream yields its chunks.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import litellm
import pytest

import policyroute
from policyroute.testing import FakeProvider, Reply, Usage

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello there"}]


def _policy(served: FakeProvider, wire: str) -> str:
    base = served.openai_base if wire == "openai" else served.anthropic_base
    return f"""
policyroute: 1
name: empty-answer
models:
  a:
    model: {wire}/fake-a
    api_base: {base}
    api_key: ${{PR_EMPTY_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
  b:
    model: {wire}/fake-b
    api_base: {base}
    api_key: ${{PR_EMPTY_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: [a, b]
receipts: {{sink: jsonl, path: receipts.jsonl}}
"""


def _calls(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "call"]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_stream_finished_without_text_is_the_answer(
    served: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    wire: str,
    asynchronous: bool,
) -> None:
    monkeypatch.setenv("PR_EMPTY_KEY", "sk-test")
    # The fake answers "Hello from ..."; a stop sequence at its start leaves no text.
    served.set_default("*", Reply(usage=Usage(prompt=7, completion=0)))
    policy = _policy(served, wire)
    call = {"policy": policy, "messages": MESSAGES, "stop": ["Hello"], "stream": True}

    async def collect() -> tuple[list[Any], Any]:
        stream = await policyroute.acompletion(**call)
        return [c async for c in stream], stream

    if asynchronous:
        chunks, stream = asyncio.run(collect())
    else:
        stream = policyroute.completion(**call)
        chunks = list(stream)

    assert [r.model for r in served.requests] == ["fake-a"]  # not fallen over to b
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    built = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    assert not built.choices[0].message.content
    assert stream.policyroute["deployment"] == "a"
    (receipt,) = _calls(tmp_path)
    assert (receipt["status"], receipt["input_tokens"]) == ("ok", 7)
    # Anthropic's message_start carries an output count of 1 that its message_delta's 0 does
    # not replace in litellm's stream (litellm's own stream says 1 as well).
    assert receipt["output_tokens"] == (0 if wire == "openai" else 1)


def test_the_same_answer_unstreamed(served: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PR_EMPTY_KEY", "sk-test")
    served.set_default("*", Reply(usage=Usage(prompt=7, completion=0)))
    response = policyroute.completion(
        policy=_policy(served, "openai"), messages=MESSAGES, stop=["Hello"]
    )
    assert not response.choices[0].message.content
    assert response.choices[0].finish_reason == "stop"
