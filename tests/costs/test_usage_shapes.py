"""Response shapes beyond the recorded fixtures: exact where the usage is sound, never a
crash or a negative figure where it is not.

Each response is parsed by litellm from a provider wire body (served by respx), so the figure
compared against is what ``litellm.completion_cost`` says for the very same object.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import httpx
import litellm
import pytest
import respx

from policyroute.costs.actual import (
    actual_cost,
    attempt_cost,
    cost_from_usage,
    to_decimal,
    usage_from_response,
)
from policyroute.execution.hooks import AttemptOutcome, Usage

from .helpers import FAKE_KEY, candidate

MESSAGES = [{"role": "user", "content": "hi"}]
OPENAI = ("openai/o4-mini", "https://api.openai.test/v1", r"https://api\.openai\.test/.*")
ANTHROPIC = (
    "anthropic/claude-sonnet-4-5-20250929",
    "https://api.anthropic.test",
    r"https://api\.anthropic\.test/.*",
)
GEMINI = ("gemini/gemini-2.5-flash", None, r"https://generativelanguage\.googleapis\.com/.*")
TOLERANCE = Decimal("1e-6")


def _call(target: tuple[str, str | None, str], body: Any = None, sse: str = "", **kw: Any) -> Any:
    model, api_base, pattern = target
    kwargs: dict[str, Any] = {"model": model, "messages": MESSAGES, "api_key": FAKE_KEY, **kw}
    if api_base:
        kwargs["api_base"] = api_base
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(url__regex=pattern)
        if sse:
            route.mock(
                return_value=httpx.Response(
                    200, content=sse.encode(), headers={"content-type": "text/event-stream"}
                )
            )
            kwargs.update(stream=True, stream_options={"include_usage": True})
            chunks = list(litellm.completion(**kwargs))
            return litellm.stream_chunk_builder(chunks, messages=MESSAGES)
        route.mock(return_value=httpx.Response(200, json=body))
        return litellm.completion(**kwargs)


def _assert_exact(response: Any, model: str) -> Decimal:
    expected = Decimal(repr(litellm.completion_cost(completion_response=response, model=model)))
    cand = candidate(model)
    for attached in (False, True):
        result = actual_cost(response, cand, use_attached=attached)
        assert result.source == "litellm"
        assert abs(result.cost - expected) < TOLERANCE, (attached, result.cost, expected)
    return expected


def _openai_body(usage: Any, n: int = 1) -> dict[str, Any]:
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": "o4-mini-2025-04-16",
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": f"answer {i}"},
                "finish_reason": "stop",
            }
            for i in range(n)
        ],
        "usage": usage,
    }


def _openai_sse(usage: dict[str, Any], n: int) -> str:
    # OpenAI interleaves the choices of ``n > 1``: one choice per chunk, usage last.
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "o4-mini"}
    events = [
        {**head, "choices": [{"index": i, "delta": {"role": "assistant", "content": f"a{i}"}}]}
        for i in range(n)
    ]
    events += [
        {**head, "choices": [{"index": i, "delta": {}, "finish_reason": "stop"}]} for i in range(n)
    ]
    events.append({**head, "choices": [], "usage": usage})
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


CACHED_AND_REASONING = {
    "prompt_tokens": 2006,
    "completion_tokens": 900,
    "total_tokens": 2906,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 576, "audio_tokens": 0},
}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_openai_n_choices_with_cached_and_reasoning_tokens(stream: bool) -> None:
    if stream:
        response = _call(OPENAI, sse=_openai_sse(CACHED_AND_REASONING, 3), n=3)
    else:
        response = _call(OPENAI, _openai_body(CACHED_AND_REASONING, 3), n=3)
    if not stream:  # litellm's stream wrapper keeps only the first choice
        assert len(response.choices) == 3
    assert usage_from_response(response) == Usage(
        input_tokens=2006, output_tokens=900, cache_read_tokens=1920, reasoning_tokens=576
    )
    assert _assert_exact(response, OPENAI[0]) > 0


def _anthropic_sse(delta_breakdown: bool) -> str:
    usage = {
        "input_tokens": 12,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 5000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 1,
    }
    final = {k: v for k, v in usage.items() if delta_breakdown or k != "cache_creation"}
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5-20250929",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "ok"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {**final, "output_tokens": 250},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


@pytest.mark.parametrize("delta_breakdown", [False, True], ids=["start-only", "both-events"])
def test_anthropic_stream_with_cache_reads_and_five_minute_and_hour_writes(
    delta_breakdown: bool,
) -> None:
    response = _call(ANTHROPIC, sse=_anthropic_sse(delta_breakdown))
    assert usage_from_response(response) == Usage(
        input_tokens=8012,
        output_tokens=250,
        cache_read_tokens=5000,
        cache_write_tokens=3000,
        cache_write_1h_tokens=2000,
    )
    expected = _assert_exact(response, ANTHROPIC[0])
    # The hour-long writes are priced at their own (higher) rate: all five-minute would be less.
    five_minute_only = cost_from_usage(
        Usage(
            input_tokens=8012, output_tokens=250, cache_read_tokens=5000, cache_write_tokens=3000
        ),
        candidate(ANTHROPIC[0]),
    ).cost
    assert five_minute_only < expected
    # The usage alone (a stream cut after its usage arrived) prices the same.
    usage = usage_from_response(response)
    assert abs(cost_from_usage(usage, candidate(ANTHROPIC[0])).cost - expected) < TOLERANCE


GEMINI_BODY = {
    "candidates": [
        {"content": {"parts": [{"text": "hi"}], "role": "model"}, "finishReason": "STOP"}
    ],
    "usageMetadata": {
        "promptTokenCount": 5000,
        "candidatesTokenCount": 40,
        "totalTokenCount": 5400,
        "cachedContentTokenCount": 4096,  # implicit caching: no cachedContent was sent
        "thoughtsTokenCount": 360,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5000}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 4096}],
    },
    "modelVersion": "gemini-2.5-flash",
}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_gemini_thinking_with_implicit_cache(stream: bool) -> None:
    if stream:
        response = _call(GEMINI, sse=f"data: {json.dumps(GEMINI_BODY)}\r\n\r\n")
    else:
        response = _call(GEMINI, GEMINI_BODY)
    assert usage_from_response(response) == Usage(
        input_tokens=5000, output_tokens=400, cache_read_tokens=4096, reasoning_tokens=360
    )
    _assert_exact(response, GEMINI[0])


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 120,
            "prompt_tokens_details": None,
            "completion_tokens_details": None,
        },
        {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": None},
            "completion_tokens_details": {"reasoning_tokens": None},
        },
        {"prompt_tokens": 100, "completion_tokens": None, "total_tokens": None},
    ],
    ids=["no-details", "null-details", "null-inside-details", "null-completion"],
)
def test_usage_with_none_or_missing_details(usage: dict[str, Any]) -> None:
    response = _call(OPENAI, _openai_body(usage))
    read = usage_from_response(response)
    assert read.input_tokens == 100
    assert read.cache_read_tokens == read.reasoning_tokens == 0
    _assert_exact(response, OPENAI[0])


@pytest.mark.parametrize(
    "body",
    [
        _openai_body({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
        {k: v for k, v in _openai_body({}).items() if k != "usage"},
    ],
    ids=["zero-tokens", "no-usage"],
)
def test_a_zero_token_answer_costs_zero(body: dict[str, Any]) -> None:
    response = _call(OPENAI, body)
    assert usage_from_response(response) == Usage()
    assert actual_cost(response, candidate(OPENAI[0])).cost == 0


# --------------------------------------------------------------------------- unsound usage


def _price_of(usage: Usage) -> Decimal:
    return cost_from_usage(usage, candidate(OPENAI[0])).cost


@pytest.mark.parametrize(
    ("usage", "sound"),
    [
        # completion -5: taken as reported, the answer would cost less than its prompt alone.
        (
            {"prompt_tokens": 100, "completion_tokens": -5, "total_tokens": 95},
            Usage(input_tokens=100),
        ),
        (
            {"prompt_tokens": 100, "completion_tokens": -(10**6), "total_tokens": 0},
            Usage(input_tokens=100),
        ),
        (
            {
                "prompt_tokens": 100,
                "completion_tokens": 10,
                "total_tokens": 110,
                "prompt_tokens_details": {"cached_tokens": -5000},
            },
            Usage(input_tokens=100, output_tokens=10),
        ),
        # More tokens than any response can hold: corrupt, not a bill of 10^24 dollars.
        (
            {"prompt_tokens": 100, "completion_tokens": 10**30, "total_tokens": 10**30},
            Usage(input_tokens=100),
        ),
    ],
    ids=["negative-output", "hugely-negative-output", "negative-cache-read", "absurd-output"],
)
def test_impossible_counts_are_clamped_and_logged(
    usage: dict[str, Any], sound: Usage, caplog: pytest.LogCaptureFixture
) -> None:
    response = _call(OPENAI, _openai_body(usage))
    with caplog.at_level(logging.WARNING, logger="policyroute.costs"):
        read = usage_from_response(response)
        results = [actual_cost(response, candidate(OPENAI[0]), use_attached=a) for a in (0, 1)]
    assert read == sound
    for result in results:
        assert result.cost == _price_of(sound) >= 0
    assert "impossible token count" in caplog.text


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), "abc", "9" * 5000, [3], {}]
)
def test_counts_that_are_not_numbers_read_as_zero_without_raising(value: object) -> None:
    raw = {"usage": {"prompt_tokens": 100, "completion_tokens": value}}
    assert usage_from_response(raw) == Usage(input_tokens=100)
    assert actual_cost(raw, candidate(OPENAI[0])).cost == _price_of(Usage(input_tokens=100))


def test_cost_from_usage_never_prices_below_zero(caplog: pytest.LogCaptureFixture) -> None:
    bad = Usage(input_tokens=10, output_tokens=-(10**6), cache_read_tokens=-3)
    with caplog.at_level(logging.WARNING, logger="policyroute.costs"):
        result = cost_from_usage(bad, candidate(OPENAI[0]))
    assert result.cost == _price_of(Usage(input_tokens=10))
    assert "impossible token count" in caplog.text


def test_an_attempt_receipt_never_carries_a_negative_count() -> None:
    response = {"usage": {"prompt_tokens": 100, "completion_tokens": -5}}
    outcome = AttemptOutcome(status="ok", response=response, usage=None)
    attempt = _FakeAttempt(candidate(OPENAI[0]), {"stream": True})
    usage, cost = attempt_cost(attempt, outcome)  # type: ignore[arg-type]
    assert usage == Usage(input_tokens=100)
    assert cost.cost == _price_of(usage)


class _FakeAttempt:
    def __init__(self, cand: Any, params: dict[str, Any]) -> None:
        self.candidate, self.params = cand, params


def test_to_decimal_holds_large_amounts_and_refuses_non_finite_ones() -> None:
    assert to_decimal(4.4e24) == Decimal("4.4e24")
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            to_decimal(bad)
