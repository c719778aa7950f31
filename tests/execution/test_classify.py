"""Every litellm failure lands in the error class that says what happened."""

from __future__ import annotations

import asyncio
import email.utils
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import openai
import pytest

from policyroute._lazy import import_litellm
from policyroute.errors import ProviderError, RateLimitError
from policyroute.execution.classify import classify, retry_after_seconds
from policyroute.testing import FakeProvider, Fault

litellm = import_litellm()
P, M = "openai", "gpt-x"


def _response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("POST", "http://x"))


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


CASES: list[tuple[str, Any, str]] = [
    ("rate limit", lambda: litellm.RateLimitError("slow", P, M), "rate_limit"),
    ("timeout", lambda: litellm.Timeout("late", M, P), "timeout"),
    ("connection", lambda: litellm.APIConnectionError("refused", P, M), "connection"),
    ("503", lambda: litellm.ServiceUnavailableError("down", P, M), "server_error"),
    ("500", lambda: litellm.InternalServerError("boom", P, M), "server_error"),
    ("502", lambda: litellm.BadGatewayError("gw", P, M), "server_error"),
    ("context", lambda: litellm.ContextWindowExceededError("long", M, P), "context_window"),
    ("content", lambda: litellm.ContentPolicyViolationError("no", M, P), "content_policy"),
    ("401", lambda: litellm.AuthenticationError("key", P, M), "authentication"),
    ("403", lambda: litellm.PermissionDeniedError("no", P, M, _response(403)), "authentication"),
    ("402", lambda: litellm.APIError(402, "insufficient credits", P, M), "authentication"),
    ("451", lambda: litellm.APIError(451, "unavailable in region", P, M), "authentication"),
    ("400", lambda: litellm.BadRequestError("bad", M, P), "bad_request"),
    ("404", lambda: litellm.NotFoundError("none", M, P), "not_found"),
    ("APIError 404", lambda: litellm.APIError(404, "no such model", P, M), "not_found"),
    ("APIError 410", lambda: litellm.APIError(410, "model retired", P, M), "not_found"),
    ("422", lambda: litellm.UnprocessableEntityError("x", M, P, _response(422)), "bad_request"),
    ("APIError 529", lambda: litellm.APIError(529, "overloaded", P, M), "server_error"),
    ("APIError 400", lambda: litellm.APIError(400, "nope", P, M), "bad_request"),
    ("json", lambda: json.JSONDecodeError("Expecting value", "{", 0), "malformed_response"),
    ("asyncio timeout", lambda: asyncio.TimeoutError(), "timeout"),
    ("httpx read timeout", lambda: httpx.ReadTimeout("slow"), "timeout"),
    ("reset", lambda: ConnectionResetError(104, "reset"), "connection"),
    # litellm wraps a reset connection and an unreadable body as 500s: the cause decides.
    (
        "500 caused by reset",
        lambda: _chained(
            litellm.InternalServerError("Connection error.", P, M), httpx.ReadError("reset")
        ),
        "connection",
    ),
    (
        "500 caused by bad json",
        lambda: _chained(
            litellm.InternalServerError("Unterminated string", P, M),
            json.JSONDecodeError("Unterminated string", '{"a', 2),
        ),
        "malformed_response",
    ),
    (
        "connection error caused by bad json",
        lambda: _chained(
            litellm.APIConnectionError("Unable to get json response", P, M),
            json.JSONDecodeError("x", "{", 0),
        ),
        "malformed_response",
    ),
    (
        "mid-stream timeout",
        lambda: litellm.exceptions.MidStreamFallbackError(
            "stall", M, P, original_exception=httpx.ReadTimeout("idle")
        ),
        "timeout",
    ),
    (
        "azure content_filter code",
        lambda: litellm.BadRequestError(
            "Your request was rejected as a result of our safety system", M, P
        ),
        "content_policy",
    ),
    (
        "openai 403 as bad request",
        lambda: litellm.BadRequestError("Forbidden", M, P, _response(403)),
        "authentication",
    ),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("name", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_classification(name: str, make: Any, expected: str) -> None:
    exc = make()
    err = classify(exc, deployment="mini", model="openai/gpt-x")
    assert err.error_class == expected
    assert err.deployment == "mini"
    assert err.model == "openai/gpt-x"
    assert err.__cause__ is exc
    assert "mini" in str(err)


@pytest.mark.timeout(20)
def test_status_code_is_kept() -> None:
    err = classify(litellm.ServiceUnavailableError("down", P, M))
    assert err.status_code == 503


@pytest.mark.timeout(20)
@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("status", "error_class"), [(529, "server_error"), (413, "context_window")]
)
def test_status_code_is_the_one_the_provider_answered_with(
    fp: FakeProvider, wire: str, status: int, error_class: str
) -> None:
    # litellm reports Anthropic's 529 overloaded as a 500 and a 413 as a 400 of its own.
    fp.script("claude-x", Fault.status(status))
    base = fp.anthropic_base if wire == "anthropic" else fp.openai_base
    with pytest.raises(openai.APIError) as info:
        litellm.completion(
            model=f"{wire}/claude-x",
            api_base=base,
            api_key="sk-test",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=5,
            max_retries=0,
        )
    err = classify(info.value, deployment="a")
    assert (err.error_class, err.status_code) == (error_class, status)


@pytest.mark.timeout(20)
def test_provider_errors_pass_through_with_deployment_filled_in() -> None:
    original = RateLimitError("429", retry_after=2.0)
    err = classify(original, deployment="mini", model="m")
    assert err is original
    assert (err.deployment, err.model, err.retry_after) == ("mini", "m", 2.0)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),  # past: no wait asked
        ({"retry-after": "not a date"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
    ],
)
def test_retry_after_from_response_headers(headers: dict[str, str], expected: float | None) -> None:
    exc = litellm.RateLimitError("slow", P, M, response=_response(429, headers))
    assert retry_after_seconds(exc) == expected
    assert classify(exc).retry_after == expected


@pytest.mark.timeout(20)
def test_retry_after_as_an_http_date_counts_from_now() -> None:
    # RFC 9110 allows an HTTP date; some gateways send one.
    when = datetime.now(timezone.utc) + timedelta(seconds=90)
    headers = {"retry-after": email.utils.format_datetime(when, usegmt=True)}
    exc = litellm.RateLimitError("slow", P, M, response=_response(429, headers))
    wait = retry_after_seconds(exc)
    assert wait is not None
    assert 85 <= wait <= 90  # whole seconds on the wire, and the time the test took
    assert classify(exc).retry_after == pytest.approx(wait, abs=2)


@pytest.mark.timeout(20)
def test_retry_after_from_litellm_kept_headers() -> None:
    exc = litellm.ServiceUnavailableError("down", P, M)
    exc.litellm_response_headers = httpx.Headers({"retry-after": "4"})
    assert classify(exc).retry_after == 4.0


@pytest.mark.timeout(20)
def test_result_is_a_provider_error() -> None:
    assert isinstance(classify(RuntimeError("weird")), ProviderError)
