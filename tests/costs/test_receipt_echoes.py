"""What providers echo back in errors never reaches a receipt: masked key prefixes, keys of
any provider's spelling, credentials in URLs, and the prompt (unless the policy keeps it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from policyroute.costs.actual import CostResult
from policyroute.costs.receipts import attempt_record, call_record, scrub
from policyroute.errors import AuthenticationError, BadRequestError, ContextWindowExceededError
from policyroute.execution.hooks import AttemptInfo, AttemptOutcome, CallInfo, CallOutcome, Usage
from policyroute.request import Request

from .helpers import make_policy

MakeAttempt = Callable[..., AttemptInfo]


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        # OpenAI masks all but the first and last few characters; the prefix still identifies
        # the key (and narrows a search for it).
        ("Incorrect API key provided: sk-abc***. You can find your API key at", "sk-abc"),
        ("Incorrect API key provided: sk-proj-********************abcd.", "abcd"),
        ("Incorrect API key provided: sk-abc12***...", "abc12"),
        ("Incorrect API key provided: myorg-k3y-0001.", "myorg-k3y-0001"),
        ("'message': 'Invalid API Key', 'key': 'gsk_abcdef1234567890abcdef'", "gsk_abcdef"),
        ("The provided API key 'xai-AbCdEfGhIjKlMnOp' is invalid", "xai-AbCdEfGh"),
        ("bad key pplx-AbCdEfGhIjKlMnOpQrSt", "pplx-AbCdEf"),
        ("nvapi-AbCdEfGhIjKlMnOpQrStUvWx rejected", "nvapi-AbCdEf"),
        ("401 for token r8_AbCdEfGhIjKlMnOpQrStUv", "r8_AbCdEfGh"),
        ("cannot reach https://user:p4ssw0rd@proxy.example.com:8080/v1", "p4ssw0rd"),
        ("proxy http://svc:s3cr3t%40x@10.0.0.1 refused", "s3cr3t"),
    ],
)
def test_echoed_credentials_are_redacted(text: str, leak: str) -> None:
    scrubbed = scrub(text, secrets=())
    assert leak not in scrubbed
    assert "[REDACTED]" in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "You can find your API key at https://platform.openai.com/account/api-keys.",
        "https://proxy.example.com:8080/v1 timed out",
        "task-1234567 failed; risk-free retry",
        "max_tokens: 4096 exceeds the limit",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub(text, secrets=()) == text


PROMPT = "Please summarise the merger terms for ACME Corp\nConfidential: price 41.7M"


def _call(policy: Any, messages: list[dict[str, Any]]) -> CallInfo:
    request = Request(messages=messages, metadata={"user_id": "u-1"}, run_id="run-1")
    return CallInfo(request=request, policy=policy, decision=policy.route(request))


def _records(error: BaseException, *, include_prompt: bool, content: Any = PROMPT) -> list[Any]:
    policy = make_policy(include_prompt=include_prompt)
    call = _call(policy, [{"role": "user", "content": content}])
    cand = call.decision.candidates[0]
    attempt = AttemptInfo(call=call, candidate=cand, params={}, number=1, route="default")
    outcome = AttemptOutcome(status="error", error=error, error_class="bad_request")
    common: dict[str, Any] = {"include_prompt": include_prompt}
    return [
        attempt_record(
            attempt, None, outcome, usage=Usage(), cost=CostResult(Decimal(0), "litellm"), **common
        ),
        call_record(
            call,
            CallOutcome(status="error", error=error, attempts=1),
            cost=Decimal(0),
            usage=Usage(),
            **common,
        ),
    ]


@pytest.mark.parametrize(
    "error",
    [
        # A request body echoed back verbatim (JSON), as by OpenAI-compatible servers.
        BadRequestError(
            "invalid request: " + json.dumps({"messages": [{"role": "user", "content": PROMPT}]})
        ),
        # The prompt repr'd inside an exception's arguments.
        ContextWindowExceededError(f"too long: messages={[{'role': 'user', 'content': PROMPT}]!r}"),
        # Plain text, newlines and all.
        BadRequestError(f"could not process: {PROMPT}"),
        # A truncated echo: only the start of the prompt, inside a 'content' field.
        BadRequestError("bad message {'role': 'user', 'content': 'Please summarise the merg...'}"),
    ],
    ids=["json-body", "repr", "plain", "truncated-content-field"],
)
def test_prompt_text_echoed_in_an_error_is_left_out(error: BaseException) -> None:
    for record in _records(error, include_prompt=False):
        text = json.dumps(record)
        assert "merger" not in text
        assert "merg" not in record["error"]
        assert "41.7M" not in text
        assert "prompt" not in record


def test_prompt_parts_of_a_multimodal_message_are_left_out() -> None:
    content = [
        {"type": "text", "text": "Describe the attached invoice of Jane Roe"},
        {"type": "image_url", "image_url": {"url": "https://example.com/i.png"}},
    ]
    error = BadRequestError("unsupported: Describe the attached invoice of Jane Roe")
    for record in _records(error, include_prompt=False, content=content):
        assert "Jane Roe" not in json.dumps(record)


def test_a_policy_keeping_the_prompt_keeps_the_echo_but_never_a_key() -> None:
    error = AuthenticationError(f"sk-abc*** rejected for: {PROMPT}")
    for record in _records(error, include_prompt=True):
        assert "merger" in record["error"]
        assert "sk-abc" not in json.dumps(record)


def test_short_prompts_do_not_blank_the_error() -> None:
    # A two-letter prompt ("hi") must not redact every "hi" of the provider's message.
    for record in _records(
        BadRequestError("this model is unavailable"), include_prompt=False, content="hi"
    ):
        assert record["error"] == "this model is unavailable"
