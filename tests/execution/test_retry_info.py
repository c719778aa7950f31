"""Gemini's wait is in its error body: ``google.rpc.RetryInfo``'s ``retryDelay``.

Gemini answers a 429 without ``Retry-After``; the wait it asks for is a ``RetryInfo`` detail in
the JSON error. Unit tests pin the reading; the end-to-end tests send a real Gemini-shaped 429
through litellm (respx on Google's endpoint) and a ``ChatPolicyRoute`` call, sync and async, and
check the wait taken and its record, and that a wait past ``retry_after_max`` falls over; the
same through Google's OpenAI-compatible endpoint (its error a JSON list), played by the fake
provider, sync and async. Where no RetryInfo came (a gateway passed on only Google's message),
the wait the message names ("Please retry in 37.4s.") is read for a rate limit, and taken or
fallen over the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from exec_support import arun

from policyroute._lazy import import_litellm
from policyroute.execution.classify import classify
from policyroute.execution.retry_info import retry_info_seconds, retry_text_seconds
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)
GEMINI_URL = r"https://generativelanguage\.googleapis\.com/.*"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def _quota_body(delay: str, *, detail_type: str = RETRY_INFO) -> dict[str, Any]:
    return {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota. Please retry in 37.4s.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": detail_type, "retryDelay": delay},
            ],
        }
    }


def _answer(text: str) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
        "modelVersion": "gemini-2.5-flash",
    }


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [("37s", 37.0), ("0.500s", 0.5), ("1.000340012s", 1.000340012), ("0s", 0.0)],
)
def test_a_retry_delay_is_read_as_seconds(delay: str, seconds: float) -> None:
    error = RuntimeError("GeminiException - " + json.dumps(_quota_body(delay)))
    assert retry_info_seconds(error) == pytest.approx(seconds)


def test_a_python_repr_of_the_body_is_read_too() -> None:
    assert retry_info_seconds(RuntimeError(str(_quota_body("12s")))) == 12.0


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(_quota_body("-3s")),  # a negative duration asks for nothing
        json.dumps(_quota_body("soon")),
        json.dumps(_quota_body("5m")),  # not a protobuf duration
        json.dumps(_quota_body("5s", detail_type="type.googleapis.com/google.rpc.Help")),
        "quota exceeded",
        # Past the 64 KiB searched: not read (a body this long is no real RetryInfo).
        " " * 70_000 + json.dumps(_quota_body("5s")),
    ],
)
def test_no_readable_retry_info_gives_no_hint(text: str) -> None:
    assert retry_info_seconds(RuntimeError(text)) is None


def test_the_first_error_carrying_one_wins_and_broken_texts_are_passed() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    first = RuntimeError(json.dumps(_quota_body("2s")))
    second = RuntimeError(json.dumps(_quota_body("9s")))
    assert retry_info_seconds(Unprintable(), first, second) == 2.0


def _gemini_error(response: httpx.Response) -> BaseException:
    litellm = import_litellm()
    with respx.mock() as mock:
        mock.post(url__regex=GEMINI_URL).mock(return_value=response)
        try:
            litellm.completion(
                model="gemini/gemini-2.5-flash",
                messages=[{"role": "user", "content": "hi"}],
                api_key="fake-gemini-key-0123456789",
                num_retries=0,
            )
        except Exception as exc:
            return exc
    raise AssertionError("litellm did not raise")


def test_classify_reads_the_wait_from_litellms_gemini_error() -> None:
    err = classify(_gemini_error(httpx.Response(429, json=_quota_body("36s"))))
    assert err.error_class == "rate_limit"
    assert (err.retry_after, err.retry_after_source) == (36.0, "retry_after")


def test_the_messages_exact_wait_beats_retry_infos_rounded_one() -> None:
    # Google's 429: RetryInfo "37s", the message "Please retry in 37.4s." (the same wait, not
    # rounded down): a retry after 37 s would come before the quota is back.
    err = classify(_gemini_error(httpx.Response(429, json=_quota_body("37s"))))
    assert (err.retry_after, err.retry_after_source) == (37.4, "retry_after")
    # Another wait than RetryInfo's is not the same one rounded: RetryInfo stays.
    err = classify(_gemini_error(httpx.Response(429, json=_quota_body("35s"))))
    assert err.retry_after == 35.0


def test_a_retry_after_header_beats_the_body() -> None:
    response = httpx.Response(429, json=_quota_body("37s"), headers={"retry-after": "4"})
    err = classify(_gemini_error(response))
    assert (err.retry_after, err.retry_after_source) == (4.0, "retry_after")


def test_a_503_with_retry_info_is_waited_too() -> None:
    body = _quota_body("3s")
    body["error"].update(code=503, status="UNAVAILABLE")
    err = classify(_gemini_error(httpx.Response(503, json=body)))
    assert err.error_class == "server_error"
    assert err.retry_after == 3.0


# --------------------------------------------------------------------------- end to end

NATIVE = """
policyroute: 1
name: gemini-retry-info
models:
  flash:
    model: gemini/gemini-2.5-flash
    api_key: ${PR_GEMINI_WAIT_KEY}
  lite:
    model: gemini/gemini-2.5-flash-lite
    api_key: ${PR_GEMINI_WAIT_KEY}
routes:
  - name: default
    to: [flash, lite]
defaults:
  max_tokens: 20
  retry:
    attempts: 2
    backoff: {initial: 5s, max: 5s, jitter: false}
    retry_after_max: 10s
receipts: {sink: none}
"""

# Google's OpenAI-compatible endpoint, here the fake provider: its 429 is a JSON list holding
# the same error, RetryInfo and all.
COMPAT = """
policyroute: 1
name: gemini-compat-retry-info
models:
  flash: {model: openai/flash, api_base: "BASE", api_key: "${PR_GEMINI_WAIT_KEY}", price: PRICE}
  lite: {model: openai/lite, api_base: "BASE", api_key: "${PR_GEMINI_WAIT_KEY}", price: PRICE}
routes:
  - name: default
    to: [flash, lite]
defaults:
  max_tokens: 20
  retry:
    attempts: 2
    backoff: {initial: 5s, max: 5s, jitter: false}
    retry_after_max: 10s
receipts: {sink: none}
"""


def _attempts(message: Any) -> list[tuple[str, float, str | None]]:
    attempts = message.response_metadata["policyroute"]["attempts"]
    return [(a["deployment"], a["waited_s"], a["wait_source"]) for a in attempts]


def test_a_gemini_429_waits_the_delay_it_names_then_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PR_GEMINI_WAIT_KEY", "fake-gemini-key-0123456789")
    model = ChatPolicyRoute(policy=NATIVE)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(url__regex=GEMINI_URL).mock(
            side_effect=[
                httpx.Response(429, json=_quota_body("0.2s")),
                httpx.Response(200, json=_answer("after the wait")),
            ]
        )
        answer = model.invoke("hello")

    assert answer.content == "after the wait"
    assert all("gemini-2.5-flash:" in str(c.request.url) for c in route.calls)
    # Not the 5 s backoff: the 0.2 s Gemini asked for.
    assert _attempts(answer) == [("flash", 0.0, None), ("flash", 0.2, "retry_after")]


def test_a_gemini_delay_past_the_cap_falls_over_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PR_GEMINI_WAIT_KEY", "fake-gemini-key-0123456789")
    model = ChatPolicyRoute(policy=NATIVE)
    with respx.mock(assert_all_called=True) as mock:
        flash = mock.post(url__regex=r".*/gemini-2\.5-flash:.*").mock(
            return_value=httpx.Response(429, json=_quota_body("3600s"))
        )
        lite = mock.post(url__regex=r".*/gemini-2\.5-flash-lite:.*").mock(
            return_value=httpx.Response(200, json=_answer("from lite"))
        )
        answer = model.invoke("hello")

    assert answer.content == "from lite"
    assert (flash.call_count, lite.call_count) == (1, 1)
    assert _attempts(answer) == [("flash", 0.0, None), ("lite", 0.0, None)]


def _compat(fp: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> ChatPolicyRoute:
    monkeypatch.setenv("PR_GEMINI_WAIT_KEY", "sk-test-0123456789")
    price = "{input_per_mtok: 1, output_per_mtok: 1}"
    return ChatPolicyRoute(policy=COMPAT.replace("BASE", fp.openai_base).replace("PRICE", price))


def _call(model: ChatPolicyRoute, mode: str) -> Any:
    if mode == "sync":
        return model.invoke("hello")
    return arun(model.ainvoke("hello"))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_openai_compatible_endpoints_delay_is_waited(
    fp: FakeProvider, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp.script("flash", Fault.status(429, body=[_quota_body("0.2s")]), Reply(text="after"))
    answer = _call(_compat(fp, monkeypatch), mode)
    assert answer.content == "after"
    assert [r.model for r in fp.requests] == ["flash", "flash"]
    assert _attempts(answer) == [("flash", 0.0, None), ("flash", 0.2, "retry_after")]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_openai_compatible_endpoints_long_delay_falls_over(
    fp: FakeProvider, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp.script("flash", Fault.status(429, body=[_quota_body("3600s")]))
    fp.script("lite", Reply(text="from lite"))
    answer = _call(_compat(fp, monkeypatch), mode)
    assert answer.content == "from lite"
    assert [r.model for r in fp.requests] == ["flash", "lite"]
    assert _attempts(answer) == [("flash", 0.0, None), ("lite", 0.0, None)]


# --------------------------------------------------------------------------- the message's wait
# Google writes the same wait in the error's message, as a Go duration: "Please retry in
# 37.412285355s." A gateway that passes on only the message (an OpenAI-compatible proxy that
# reduces Google's error to {"error": {"message": ...}}) leaves no RetryInfo; the sentence is
# read then, for a rate limit, and goes the way of Retry-After: capped, or fallen over past it.

_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more"
    " information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
    "* Quota exceeded for metric: generativelanguage.googleapis.com/"
    "generate_content_free_tier_requests, limit: 10, model: gemini-2.5-flash\n"
)


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("37.412285355s", 37.412285355),
        ("0s", 0.0),
        ("745.064612ms", 0.745064612),
        ("1m0s", 60.0),
        ("2h47m56.584147483s", 10076.584147483),
        ("12\u00b5s", 0.000012),
    ],
)
def test_the_messages_go_duration_is_read_as_seconds(duration: str, seconds: float) -> None:
    error = RuntimeError(_QUOTA + f"Please retry in {duration}.")
    assert retry_text_seconds(error) == pytest.approx(seconds)
    # In a JSON body (as UTF-8, as Google sends it) and a Python repr of one, it reads the same.
    for body in (json.dumps({"message": str(error)}, ensure_ascii=False), str({"m": str(error)})):
        assert retry_text_seconds(RuntimeError(body)) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "Resource exhausted. Please try again later.",  # Vertex AI's 429 names no wait
        "Please retry in a moment.",
        "Please retry in 30 seconds.",  # not a Go duration
        "Please retry in 5.",
        "please retry in 5s.",  # not Google's sentence
        "Please retry in -3s.",
        " " * 70_000 + "Please retry in 5s.",  # past the 64 KiB searched
    ],
)
def test_no_go_duration_in_the_sentence_gives_no_hint(text: str) -> None:
    assert retry_text_seconds(RuntimeError(text)) is None


def test_retry_info_wins_over_the_message() -> None:
    # Both name the wait in Google's own body: the structured one is read.
    err = classify(_gemini_error(httpx.Response(429, json=_quota_body("3s"))))
    assert err.retry_after == 3.0


def test_the_message_is_read_where_no_retry_info_came() -> None:
    body = {"error": {"code": 429, "message": _QUOTA + "Please retry in 4.5s.", "status": "x"}}
    err = classify(_gemini_error(httpx.Response(429, json=body)))
    assert (err.error_class, err.retry_after, err.retry_after_source) == (
        "rate_limit",
        4.5,
        "retry_after",
    )


def test_the_message_of_another_error_than_a_rate_limit_is_no_hint() -> None:
    body = {"error": {"code": 503, "message": "Please retry in 4.5s.", "status": "UNAVAILABLE"}}
    err = classify(_gemini_error(httpx.Response(503, json=body)))
    assert err.error_class == "server_error"
    assert err.retry_after is None


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_gateways_message_only_429_waits_the_delay_it_names(
    fp: FakeProvider, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp.script("flash", Fault.status(429, message=_QUOTA + "Please retry in 0.2s."), Reply(text="a"))
    answer = _call(_compat(fp, monkeypatch), mode)
    assert answer.content == "a"
    assert [r.model for r in fp.requests] == ["flash", "flash"]
    # Not the policy's 5 s backoff: the 0.2 s the message asked for.
    assert _attempts(answer) == [("flash", 0.0, None), ("flash", 0.2, "retry_after")]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_gateways_message_only_429_past_the_cap_falls_over_at_once(
    fp: FakeProvider, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A daily quota: hours away, past retry_after_max (10 s), so the next deployment answers.
    fp.script("flash", Fault.status(429, message=_QUOTA + "Please retry in 2h47m56.58s."))
    fp.script("lite", Reply(text="from lite"))
    answer = _call(_compat(fp, monkeypatch), mode)
    assert answer.content == "from lite"
    assert [r.model for r in fp.requests] == ["flash", "lite"]
    assert _attempts(answer) == [("flash", 0.0, None), ("lite", 0.0, None)]


def test_completion_waits_the_messages_delay_too(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import policyroute
    from policyroute.api import clear_cache

    monkeypatch.setenv("PR_GEMINI_WAIT_KEY", "sk-test-0123456789")
    price = "{input_per_mtok: 1, output_per_mtok: 1}"
    path = tmp_path / "policy.yaml"
    path.write_text(COMPAT.replace("BASE", fp.openai_base).replace("PRICE", price))
    fp.script("flash", Fault.status(429, message=_QUOTA + "Please retry in 0.2s."), Reply(text="a"))
    try:
        response = policyroute.completion(
            policy=str(path), messages=[{"role": "user", "content": "hello"}]
        )
    finally:
        clear_cache()
    attempts = response._hidden_params["policyroute"]["attempts"]
    assert [(a["deployment"], a["waited_s"], a["wait_source"]) for a in attempts] == [
        ("flash", 0.0, None),
        ("flash", 0.2, "retry_after"),
    ]
