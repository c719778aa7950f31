"""``policyroute.completion(stream=True)`` ends with a usage chunk only when the caller asks
(``stream_options={"include_usage": True}``), as litellm's own stream does.

policyroute always asks the provider for usage, to charge the call; what the caller gets
follows what the caller asked for, and the receipt charges the provider's count either way.
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
TEXT = "one two three"


@pytest.fixture
def policy(served: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PR_USAGE_KEY", "sk-test")
    served.set_default("fake-u", Reply(text=TEXT, usage=Usage(prompt=7, completion=3)))
    return f"""
policyroute: 1
name: usage-chunk
models:
  u:
    model: openai/fake-u
    api_base: {served.openai_base}
    api_key: ${{PR_USAGE_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: u
receipts: {{sink: jsonl, path: receipts.jsonl}}
"""


def _usage_chunks(chunks: list[Any]) -> list[Any]:
    return [c for c in chunks if getattr(c, "usage", None) is not None]


def _charged(tmp_path: Path) -> tuple[int, int, bool]:
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    (call,) = [r for r in map(json.loads, lines) if r["kind"] == "call"]
    return call["input_tokens"], call["output_tokens"], call["usage_estimated"]


@pytest.mark.parametrize("options", [None, {"include_usage": False}, {}])
def test_no_usage_chunk_unless_asked(policy: str, tmp_path: Path, options: Any) -> None:
    extra = {} if options is None else {"stream_options": options}
    chunks = list(policyroute.completion(policy=policy, messages=MESSAGES, stream=True, **extra))
    assert _usage_chunks(chunks) == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert _charged(tmp_path) == (7, 3, False)  # the provider's own count, all the same


def test_the_usage_chunk_when_asked(policy: str, tmp_path: Path) -> None:
    chunks = list(
        policyroute.completion(
            policy=policy, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    (last,) = _usage_chunks(chunks)
    assert last is chunks[-1]
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (7, 3)


@pytest.mark.parametrize("asked", [False, True])
def test_async_stream_follows_the_same_rule(policy: str, tmp_path: Path, asked: bool) -> None:
    async def run() -> list[Any]:
        stream = await policyroute.acompletion(
            policy=policy,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": asked},
        )
        return [c async for c in stream]

    chunks = asyncio.run(run())
    assert len(_usage_chunks(chunks)) == (1 if asked else 0)
    assert _charged(tmp_path) == (7, 3, False)


def _built_usage(chunks: list[Any]) -> tuple[int, int]:
    built = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    return built.usage.prompt_tokens, built.usage.completion_tokens


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("asynchronous", [False, True])
def test_chunks_without_the_usage_chunk_still_build_the_charged_usage(
    served: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    wire: str,
    asynchronous: bool,
) -> None:
    # litellm's own stream, when the caller asks for no usage chunk, leaves the usage in the
    # last chunk's _hidden_params, where stream_chunk_builder (and completion_cost on what it
    # builds) reads it; without it the builder counts the text locally, a different figure.
    monkeypatch.setenv("PR_USAGE_KEY", "sk-test")
    served.set_default("*", Reply(text=TEXT, usage=Usage(prompt=7, completion=3)))
    prefix, base = ("openai", served.openai_base)
    if wire == "anthropic":
        prefix, base = ("anthropic", served.anthropic_base)
    policy = f"""
policyroute: 1
name: usage-hidden
models:
  u:
    model: {prefix}/fake-u
    api_base: {base}
    api_key: ${{PR_USAGE_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: u
receipts: {{sink: jsonl, path: receipts.jsonl}}
"""

    async def collect() -> list[Any]:
        stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
        return [c async for c in stream]

    if asynchronous:
        chunks = asyncio.run(collect())
    else:
        chunks = list(policyroute.completion(policy=policy, messages=MESSAGES, stream=True))
    assert _usage_chunks(chunks) == []
    hidden = chunks[-1]._hidden_params["usage"]
    assert (hidden.prompt_tokens, hidden.completion_tokens) == (7, 3)
    assert _built_usage(chunks) == (7, 3)
    assert _charged(tmp_path) == (7, 3, False)
