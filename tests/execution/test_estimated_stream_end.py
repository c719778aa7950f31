"""A stream that ends whole (every choice finished) without the provider's usage keeps its
answer, and its receipt says ``usage_estimated`` with the tokens counted locally; the usage
the provider did report (Anthropic's ``message_start`` input and cache counts, its
``message_delta`` output count) is used wherever it came. Through ``policyroute.acompletion``
and ``policyroute.completion`` with a policy file, as a user meets it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest
from billing_support import (
    CLAUDE,
    assert_counted_locally,
    cached_input_usage,
    claude_price,
    ok_receipts,
    policy_file,
    receipts,
)
from exec_support import arun

import policyroute
from policyroute.errors import PolicyRouteError
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: estimated-stream-end
models:
  gpt:
    model: openai/end-gpt
    api_base: {openai}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
  claude:
    model: anthropic/{claude}
    api_base: {anthropic}
    api_key: ${{BILLING_TEST_KEY}}
budgets:
  - name: daily
    limit_usd: 100
    window: day
store: {{backend: memory}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
routes:
  - name: claude
    when: {{metadata.provider: anthropic}}
    to: claude
  - name: default
    to: gpt
defaults:
  max_tokens: 64
  retry: {{attempts: 0}}
"""
MESSAGES = [{"role": "user", "content": "tell me a long story about a lighthouse keeper"}]
TEXT = "one two three four five six seven eight"
WORDS = TEXT.split(" ")
# role chunk, one chunk a word, the finish chunk; the usage chunk and [DONE] follow.
OPENAI_FINISHED = 1 + len(WORDS) + 1
# message_start, content_block_start, ping, a delta a word, content_block_stop,
# message_delta; message_stop follows.
ANTHROPIC_DELTA_SENT = 3 + len(WORDS) + 2
REPORTED = Usage(prompt=1000, completion=50, cached=200, cache_creation=300)


def _policy(workdir: Path, fp: FakeProvider) -> Path:
    text = POLICY.format(openai=fp.openai_base, anthropic=fp.anthropic_base, claude=CLAUDE)
    return policy_file(workdir, text)


def _stream_async(policy: Path, provider: str = "openai") -> str:
    async def consume() -> str:
        stream = await policyroute.acompletion(
            policy=policy, messages=MESSAGES, stream=True, metadata={"provider": provider}
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    return arun(consume())


def _stream_sync(policy: Path, provider: str = "openai") -> str:
    stream = policyroute.completion(
        policy=policy, messages=MESSAGES, stream=True, metadata={"provider": provider}
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


STREAMERS = [pytest.param(_stream_async, id="async"), pytest.param(_stream_sync, id="sync")]


def _assert_anthropic(workdir: Path, output_tokens: int, *, estimated: bool) -> None:
    attempt, call = ok_receipts(workdir)
    assert attempt["input_tokens"] == 1500  # message_start's, cached parts included
    assert (attempt["cache_read_tokens"], attempt["cache_write_tokens"]) == (200, 300)
    assert attempt["output_tokens"] == output_tokens
    expected = claude_price(cached_input_usage(output_tokens))
    assert abs(Decimal(attempt["cost"]) - expected) < Decimal("1e-6")
    assert (attempt["usage_estimated"], call["usage_estimated"]) == (estimated, estimated)


# --------------------------------------------------------------------------- OpenAI format


@pytest.mark.parametrize("stream", STREAMERS)
def test_openai_stream_cut_after_its_finish_chunk_is_kept_and_counted_locally(
    fp: FakeProvider, workdir: Path, stream: Any
) -> None:
    fp.script("end-gpt", Fault.stream_cut(after=OPENAI_FINISHED, reply=Reply(text=TEXT)))

    assert stream(_policy(workdir, fp)) == TEXT

    (request,) = fp.requests_for("end-gpt")
    assert request.body["stream_options"] == {"include_usage": True}
    assert_counted_locally(workdir, "openai/end-gpt", MESSAGES, TEXT)


def _openai_chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return json.dumps(
        {"id": "c1", "object": "chat.completion.chunk", "model": "end-gpt", "choices": [choice]}
    )


@pytest.mark.parametrize("stream", STREAMERS)
def test_openai_stream_that_never_sends_its_usage_chunk_is_counted_locally(
    fp: FakeProvider, workdir: Path, stream: Any
) -> None:
    # A provider (or proxy) that ignores stream_options.include_usage: a whole answer and
    # [DONE], no usage anywhere.
    events = [_openai_chunk({"role": "assistant", "content": ""})]
    events += [_openai_chunk({"content": w}) for w in [WORDS[0]] + [f" {w}" for w in WORDS[1:]]]
    events.append(_openai_chunk({}, "stop"))
    fp.script("end-gpt", Fault.raw_stream(*events, done=True))

    assert stream(_policy(workdir, fp)) == TEXT

    assert_counted_locally(workdir, "openai/end-gpt", MESSAGES, TEXT)


@pytest.mark.parametrize("stream", STREAMERS)
def test_openai_stream_missing_only_done_keeps_the_reported_usage(
    fp: FakeProvider, workdir: Path, stream: Any
) -> None:
    fp.script("end-gpt", Fault.missing_done(reply=Reply(text=TEXT, usage=Usage(300, 40))))

    assert stream(_policy(workdir, fp)) == TEXT

    attempt, call = ok_receipts(workdir)
    assert (attempt["input_tokens"], attempt["output_tokens"]) == (300, 40)
    assert (attempt["usage_estimated"], call["usage_estimated"]) == (False, False)


# --------------------------------------------------------------------------- Anthropic format


@pytest.mark.parametrize("stream", STREAMERS)
def test_anthropic_stream_cut_after_message_delta_keeps_the_reported_usage(
    fp: FakeProvider, workdir: Path, stream: Any
) -> None:
    fp.script(
        CLAUDE, Fault.stream_cut(after=ANTHROPIC_DELTA_SENT, reply=Reply(TEXT, usage=REPORTED))
    )

    assert stream(_policy(workdir, fp), "anthropic") == TEXT

    _assert_anthropic(workdir, 50, estimated=False)


@pytest.mark.parametrize("stream", STREAMERS)
def test_anthropic_stream_missing_message_stop_keeps_the_reported_usage(
    fp: FakeProvider, workdir: Path, stream: Any
) -> None:
    fp.script(CLAUDE, Fault.missing_done(reply=Reply(TEXT, usage=REPORTED)))

    assert stream(_policy(workdir, fp), "anthropic") == TEXT

    _assert_anthropic(workdir, 50, estimated=False)


def _anthropic_event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}"


def _anthropic_events(message_delta_usage: dict[str, Any] | None) -> list[str]:
    usage = {
        "input_tokens": 1000,
        "output_tokens": 1,  # message_start's placeholder, not the answer's count
        "cache_read_input_tokens": 200,
        "cache_creation_input_tokens": 300,
    }
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": CLAUDE,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    events = [
        _anthropic_event("message_start", {"message": message}),
        _anthropic_event(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        ),
    ]
    events += [
        _anthropic_event(
            "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": t}}
        )
        for t in [WORDS[0]] + [f" {w}" for w in WORDS[1:]]
    ]
    events.append(_anthropic_event("content_block_stop", {"index": 0}))
    delta: dict[str, Any] = {"delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    if message_delta_usage is not None:
        delta["usage"] = message_delta_usage
    events.append(_anthropic_event("message_delta", delta))
    events.append(_anthropic_event("message_stop", {}))
    return events


@pytest.mark.parametrize("stream", STREAMERS)
def test_anthropic_message_delta_without_usage_counts_only_the_output_locally(
    fp: FakeProvider, workdir: Path, stream: Any
) -> None:
    fp.script(CLAUDE, Fault.raw_stream(*_anthropic_events(None)))

    assert stream(_policy(workdir, fp), "anthropic") == TEXT

    # The input and its cache split are message_start's; the output is counted from the
    # text, not taken from message_start's placeholder of 1.
    output = litellm.token_counter(model=f"anthropic/{CLAUDE}", text=TEXT)
    assert output > 1
    _assert_anthropic(workdir, output, estimated=True)


@pytest.mark.parametrize("stream", STREAMERS)
def test_anthropic_message_delta_with_usage_is_not_estimated(
    fp: FakeProvider, workdir: Path, stream: Any
) -> None:
    fp.script(CLAUDE, Fault.raw_stream(*_anthropic_events({"output_tokens": 42})))

    assert stream(_policy(workdir, fp), "anthropic") == TEXT

    _assert_anthropic(workdir, 42, estimated=False)


def test_anthropic_stream_cut_after_content_without_message_delta_is_estimated(
    fp: FakeProvider, workdir: Path
) -> None:
    # No finish reason came: the answer is not whole, and the caller is told so.
    fp.script(
        CLAUDE, Fault.stream_cut(after=ANTHROPIC_DELTA_SENT - 1, reply=Reply(TEXT, usage=REPORTED))
    )

    with pytest.raises(PolicyRouteError) as info:
        _stream_async(_policy(workdir, fp), "anthropic")

    partial = getattr(info.value, "partial_text", "")
    assert partial == TEXT
    (attempt,) = receipts(workdir, "attempt")
    (call,) = receipts(workdir, "call")
    assert attempt["status"] == "interrupted"
    assert (attempt["input_tokens"], attempt["cache_read_tokens"]) == (1500, 200)
    assert attempt["output_tokens"] == litellm.token_counter(model=f"anthropic/{CLAUDE}", text=TEXT)
    assert (attempt["usage_estimated"], call["usage_estimated"]) == (True, True)
