"""A 429 without Retry-After waits for the rate limit's reset the provider announced.

Unit tests pin the parsing and the rule (which limit's reset counts); the end-to-end tests go
through real litellm against the fake provider, OpenAI and Anthropic wires, sync and async,
and check the wait the executor asked for, its cap, and the fall-over past the cap.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from exec_support import (
    FAST_RETRY,
    RecordingAccounting,
    Sleeps,
    StubPolicy,
    arun,
    ask,
    candidate,
    stream_in_mode,
)

import policyroute
from policyroute._lazy import import_litellm
from policyroute.errors import AllCandidatesFailedError
from policyroute.execution.classify import classify
from policyroute.execution.executor import CallResult, Executor, StreamDone
from policyroute.execution.ratelimit_headers import (
    parse_go_duration,
    parse_rfc3339,
    rate_limit_reset_seconds,
)
from policyroute.policy.model import DefaultsSpec
from policyroute.routing.decision import Candidate
from policyroute.testing import FakeProvider, Fault, Reply

litellm = import_litellm()
pytestmark = pytest.mark.timeout(20)
MODES = ["sync", "async"]
CLAUDE = "claude-sonnet-4-5-20250929"
T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)

# OpenAI's headers when the request count is spent: the requests limit resets in 300 ms, the
# token limit (not the one that refused) only in six minutes.
REQUESTS_SPENT = {
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "300ms",
    "x-ratelimit-remaining-tokens": "149000",
    "x-ratelimit-reset-tokens": "6m0s",
}


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5s", 0.5),
        (".5s", 0.5),
        ("0", 0.0),
        ("0s", 0.0),
        ("+2s", 2.0),
        ("1m30s", 90.0),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("250μs", 0.00025),
        ("100ns", 1e-7),
        (" 7.66s ", 7.66),
        ("2m59.56s", 179.56),
    ],
)
def test_go_durations_are_read(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds, rel=1e-9)


@pytest.mark.parametrize(
    "text",
    ["", "1", "1.5", "s", "1x", "-1s", "1 s", "1s2", ".s", "1e3s", "soon", "1d", "9" * 400 + "h"],
)
def test_other_durations_are_refused(text: str) -> None:
    assert parse_go_duration(text) is None


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2025-06-01T12:00:30Z", T0 + timedelta(seconds=30)),
        ("2025-06-01t12:00:30z", T0 + timedelta(seconds=30)),
        ("2025-06-01T14:00:30+02:00", T0 + timedelta(seconds=30)),
        ("2025-06-01T11:30:00-00:30", T0),
        ("2025-06-01T12:00:01.123456789Z", T0 + timedelta(seconds=1.123456789)),
        ("2025-06-01 12:00:00Z", T0),
    ],
)
def test_rfc3339_times_are_read(text: str, moment: datetime) -> None:
    assert parse_rfc3339(text) == moment


@pytest.mark.parametrize(
    "text",
    [
        "2025-06-01T12:00:30",  # no offset: RFC 3339 requires one
        "2025-02-30T12:00:00Z",
        "2025-06-01T12:00:00+24:00",
        "Sun, 01 Jun 2025 12:00:00 GMT",
        "1748779200",
        "",
    ],
)
def test_other_times_are_refused(text: str) -> None:
    assert parse_rfc3339(text) is None


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        pytest.param(REQUESTS_SPENT, 0.3, id="the exhausted limit's reset, not the longest"),
        pytest.param(
            {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "2s",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "20ms",
            },
            2.0,
            id="several exhausted: the longest of them",
        ),
        pytest.param(
            {
                "x-ratelimit-remaining-requests": "10",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-remaining-tokens": "400",
                "x-ratelimit-reset-tokens": "12s",
            },
            12.0,
            id="none exhausted (a request above what is left): the longest",
        ),
        pytest.param(
            {"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "3s"},
            3.0,
            id="no remaining count: the longest",
        ),
        pytest.param(
            {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "later",
                "x-ratelimit-remaining-tokens": "5",
                "x-ratelimit-reset-tokens": "6m0s",
            },
            None,
            id="the exhausted limit's reset unreadable: no hint",
        ),
        pytest.param(
            {"x-ratelimit-reset-requests": "soon", "x-ratelimit-reset-tokens": "4s"},
            4.0,
            id="an unreadable reset is left out",
        ),
        pytest.param(
            {
                "x-ratelimit-remaining-requests": "none",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-remaining-tokens": "-1",
                "x-ratelimit-reset-tokens": "2s",
            },
            2.0,
            id="unreadable remaining counts are not taken for exhausted",
        ),
        pytest.param({"x-ratelimit-reset-requests": "-5s"}, None, id="negative: refused"),
        pytest.param({"x-ratelimit-remaining-requests": "0"}, None, id="no reset at all"),
        pytest.param({"x-ratelimit-reset-requests": "0s"}, 0.0, id="reset now: no wait"),
        pytest.param(
            {"X-RateLimit-Remaining-Requests": "0", "X-RateLimit-Reset-Requests": "1.5s"},
            1.5,
            id="names in any case",
        ),
        pytest.param(
            {
                "llm_provider-x-ratelimit-remaining-requests": "0",
                "llm_provider-x-ratelimit-reset-requests": "750ms",
                "llm_provider-x-ratelimit-reset-tokens": "30s",
            },
            0.75,
            id="forwarded by a litellm proxy",
        ),
        pytest.param(
            {
                # A proxy copies upstream counts unprefixed but resets only with the prefix:
                # the pair is read from one family, so the prefixed count decides.
                "x-ratelimit-remaining-requests": "0",
                "llm_provider-x-ratelimit-remaining-requests": "7",
                "llm_provider-x-ratelimit-reset-requests": "1s",
                "llm_provider-x-ratelimit-remaining-tokens": "0",
                "llm_provider-x-ratelimit-reset-tokens": "2s",
            },
            2.0,
            id="proxy pairs stay together",
        ),
        pytest.param(
            {
                "anthropic-ratelimit-requests-remaining": "49",
                "anthropic-ratelimit-requests-reset": "2025-06-01T12:00:01Z",
                "anthropic-ratelimit-input-tokens-remaining": "0",
                "anthropic-ratelimit-input-tokens-reset": "2025-06-01T12:00:20Z",
                "anthropic-ratelimit-output-tokens-remaining": "8000",
                "anthropic-ratelimit-output-tokens-reset": "2025-06-01T12:00:59Z",
            },
            20.0,
            id="anthropic: the exhausted input-token limit",
        ),
        pytest.param(
            {
                "anthropic-ratelimit-tokens-remaining": "0",
                "anthropic-ratelimit-tokens-reset": "2025-06-01T11:59:00Z",
            },
            None,
            id="anthropic: a reset already past gives no hint",
        ),
        pytest.param(
            {
                "anthropic-ratelimit-tokens-remaining": "0",
                "anthropic-ratelimit-tokens-reset": "in a minute",
            },
            None,
            id="anthropic: unreadable time",
        ),
        pytest.param({}, None, id="no headers"),
    ],
)
def test_the_reset_of_the_limit_that_refused_is_the_wait(
    headers: dict[str, str], wait: float | None
) -> None:
    got = rate_limit_reset_seconds(headers, now=T0)
    if wait is None:
        assert got is None
    else:
        assert got == pytest.approx(wait)
    assert rate_limit_reset_seconds(httpx.Headers(headers), now=T0) == got


def test_a_naive_now_is_taken_as_utc() -> None:
    headers = {"anthropic-ratelimit-requests-reset": "2025-06-01T12:00:08Z"}
    naive = T0.replace(tzinfo=None)
    assert rate_limit_reset_seconds(headers, now=naive) == pytest.approx(8.0)


def test_something_that_is_not_a_mapping_gives_no_hint() -> None:
    assert rate_limit_reset_seconds(None) is None
    assert rate_limit_reset_seconds("x-ratelimit-reset-requests: 1s") is None


# --------------------------------------------------------------------------- classify


def _rate_limited(headers: dict[str, str]) -> BaseException:
    request = httpx.Request("POST", "http://x")
    response = httpx.Response(429, headers=headers, request=request)
    return litellm.RateLimitError("slow", "openai", "gpt-x", response=response)


def test_a_rate_limit_takes_its_wait_from_the_reset_headers() -> None:
    assert classify(_rate_limited(REQUESTS_SPENT)).retry_after == pytest.approx(0.3)


def test_retry_after_keeps_priority_over_the_reset_headers() -> None:
    err = classify(_rate_limited({**REQUESTS_SPENT, "retry-after": "2"}))
    assert err.retry_after == 2.0
    err = classify(_rate_limited({**REQUESTS_SPENT, "retry-after-ms": "40"}))
    assert err.retry_after == pytest.approx(0.04)


def test_reset_headers_are_read_from_litellms_kept_headers() -> None:
    exc = litellm.RateLimitError("slow", "openai", "gpt-x")
    exc.litellm_response_headers = httpx.Headers(REQUESTS_SPENT)
    assert classify(exc).retry_after == pytest.approx(0.3)


def test_reset_headers_only_count_for_rate_limits() -> None:
    # A 503 says nothing about when a quota frees up, whatever headers ride along with it.
    exc = litellm.ServiceUnavailableError("down", "openai", "gpt-x")
    exc.litellm_response_headers = httpx.Headers(REQUESTS_SPENT)
    err = classify(exc)
    assert err.error_class == "server_error"
    assert err.retry_after is None


# --------------------------------------------------------------------------- end to end


def _executor(
    candidates: list[Candidate], sleeps: Any = None, defaults: DefaultsSpec | None = None
) -> Executor:
    policy = StubPolicy(candidates)
    if defaults is not None:
        policy.defaults = defaults
    kw: dict[str, Any] = {}
    if sleeps is not None:
        kw = {"sleep": sleeps, "asleep": sleeps.asleep}
    return Executor(policy, accounting=RecordingAccounting(), **kw)


def _run(ex: Executor, mode: str) -> CallResult:
    if mode == "sync":
        return ex.complete(ask())
    return arun(ex.acomplete(ask()))


def _trail(result: CallResult | AllCandidatesFailedError) -> list[tuple[str, str | None]]:
    return [(a.alias, a.error_class) for a in result.attempts]


@pytest.mark.parametrize("mode", MODES)
def test_openai_429_waits_for_the_exhausted_limits_reset(fp: FakeProvider, mode: str) -> None:
    fp.script("a", Fault.status(429, headers=REQUESTS_SPENT), Reply(text="ok"))
    sleeps = Sleeps()
    result = _run(_executor([candidate("a", fp.openai_base)], sleeps), mode)
    assert result.response.choices[0].message.content == "ok"
    assert _trail(result) == [("a", "rate_limit"), ("a", None)]
    # Before, this was a jittered backoff of at most FAST_RETRY's 0.01 s.
    assert sleeps == [pytest.approx(0.3)]


@pytest.mark.parametrize("mode", MODES)
def test_anthropic_429_waits_until_the_reset_time(fp: FakeProvider, mode: str) -> None:
    reset = datetime.now(timezone.utc) + timedelta(seconds=3.5)
    headers = {
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": reset.isoformat().replace("+00:00", "Z"),
        "anthropic-ratelimit-requests-remaining": "40",
        "anthropic-ratelimit-requests-reset": (reset + timedelta(seconds=60)).isoformat(),
    }
    fp.script(CLAUDE, Fault.status(429, headers=headers), Reply(text="ok"))
    sleeps = Sleeps()
    claude = candidate("c", fp.anthropic_base, model=f"anthropic/{CLAUDE}")
    result = _run(_executor([claude], sleeps), mode)
    assert _trail(result) == [("c", "rate_limit"), ("c", None)]
    assert len(sleeps) == 1
    assert 2.0 <= sleeps[0] <= 3.5  # counted from when the answer was read


@pytest.mark.parametrize("mode", MODES)
def test_a_reset_beyond_the_cap_falls_over_to_the_next_deployment(
    fp: FakeProvider, mode: str
) -> None:
    # FAST_RETRY caps waits at 5 s; the requests limit resets only in six minutes.
    spent = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}
    fp.script("a", Fault.status(429, headers=spent))
    fp.script("b", Reply(text="from b"))
    sleeps = Sleeps()
    ex = _executor([candidate("a", fp.openai_base), candidate("b", fp.openai_base)], sleeps)
    result = _run(ex, mode)
    assert result.response.choices[0].message.content == "from b"
    assert _trail(result) == [("a", "rate_limit"), ("b", None)]
    assert sleeps == []
    assert fp.attempts("a") == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_reset_beyond_the_cap_waits_the_cap_when_nothing_else_is_left(
    fp: FakeProvider, mode: str
) -> None:
    spent = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1h"}
    fp.script("a", Fault.status(429, headers=spent), Reply(text="ok"))
    sleeps = Sleeps()
    result = _run(_executor([candidate("a", fp.openai_base)], sleeps), mode)
    assert _trail(result) == [("a", "rate_limit"), ("a", None)]
    assert sleeps == [FAST_RETRY.retry_after_max]


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_keeps_priority_end_to_end(fp: FakeProvider, mode: str) -> None:
    fp.script("a", Fault.status(429, retry_after=2, headers=REQUESTS_SPENT), Reply(text="ok"))
    sleeps = Sleeps()
    _run(_executor([candidate("a", fp.openai_base)], sleeps), mode)
    assert sleeps == [2.0]


@pytest.mark.parametrize("mode", MODES)
def test_garbage_reset_headers_leave_the_backoff(fp: FakeProvider, mode: str) -> None:
    garbage = {
        "x-ratelimit-remaining-requests": "zero",
        "x-ratelimit-reset-requests": "in a while",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "-3s",
        "anthropic-ratelimit-tokens-reset": "tomorrow",
    }
    fp.script("a", Fault.status(429, headers=garbage), Reply(text="ok"))
    sleeps = Sleeps()
    result = _run(_executor([candidate("a", fp.openai_base)], sleeps), mode)
    assert _trail(result) == [("a", "rate_limit"), ("a", None)]
    assert len(sleeps) == 1
    assert 0.0 <= sleeps[0] <= FAST_RETRY.backoff.initial


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_waits_for_the_reset_too(fp: FakeProvider, mode: str) -> None:
    fp.script("a", Fault.status(429, headers=REQUESTS_SPENT), Reply(text="streamed"))
    sleeps = Sleeps()
    ex = _executor([candidate("a", fp.openai_base)], sleeps)
    events = stream_in_mode(ex, ask(), mode)
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert _trail(done.result) == [("a", "rate_limit"), ("a", None)]
    assert sleeps == [pytest.approx(0.3)]


@pytest.mark.parametrize("mode", MODES)
def test_the_provider_sees_the_retry_after_the_reset(fp: FakeProvider, mode: str) -> None:
    # Real sleeping: the recorded gap between the two requests covers the announced reset.
    fp.script("a", Fault.status(429, headers=REQUESTS_SPENT), Reply(text="ok"))
    started = time.monotonic()
    result = _run(_executor([candidate("a", fp.openai_base)]), mode)
    assert _trail(result) == [("a", "rate_limit"), ("a", None)]
    first, second = fp.requests_for("a")
    assert second.timestamp - first.timestamp >= 0.28
    assert time.monotonic() - started < 10


# --------------------------------------------------------------------------- the fake provider


def test_a_status_fault_sends_its_headers_as_given(fp: FakeProvider) -> None:
    headers = {"x-ratelimit-reset-requests": "1h2m3.5s", "X-Custom": "kept as sent"}
    fp.script("a", Fault.status(429, retry_after=1, headers=headers))
    body = {"model": "a", "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(fp.openai_base + "/chat/completions", json=body, timeout=5)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["x-ratelimit-reset-requests"] == "1h2m3.5s"
    assert answer.headers["x-custom"] == "kept as sent"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("content-length", "0"),
        ("Transfer-Encoding", "chunked"),
        ("bad name", "x"),
        ("x-ok", "two\r\nlines"),
        ("x-ok", "naïve"),
    ],
)
def test_a_status_fault_refuses_headers_that_would_break_the_response(
    name: str, value: str
) -> None:
    with pytest.raises(ValueError, match=r"StatusFault\.headers"):
        Fault.status(429, headers={name: value})


# --------------------------------------------------------------------------- through a policy

POLICY = """
policyroute: 1
name: ratelimit-reset
models:
  a: {{model: openai/a, api_base: "{base}", api_key: "${{PR_RESET_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
  b: {{model: openai/b, api_base: "{base}", api_key: "${{PR_RESET_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes:
  - name: default
    to: [a, b]
receipts: {{sink: none}}
defaults:
  max_tokens: 10
  # Without a hint the retry would come within 20 ms.
  retry: {{attempts: 1, retry_after_max: 3s, backoff: {{initial: 10ms, max: 20ms}}}}
"""


@pytest.fixture
def policy_text(fp: FakeProvider, workdir: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PR_RESET_KEY", "sk-reset-0123456789")
    return POLICY.format(base=fp.openai_base)


def _hello(policy_text: str) -> str:
    answer = policyroute.completion(
        policy=policy_text, messages=[{"role": "user", "content": "hello"}]
    )
    return str(answer.choices[0].message.content)


def test_a_policy_call_retries_after_the_reset(fp: FakeProvider, policy_text: str) -> None:
    fp.script("a", Fault.status(429, headers=REQUESTS_SPENT), Reply(text="from a"))
    assert _hello(policy_text) == "from a"
    first, second = fp.requests_for("a")
    assert second.timestamp - first.timestamp >= 0.28
    assert fp.attempts("b") == 0


def test_a_policy_call_falls_over_when_the_reset_is_past_retry_after_max(
    fp: FakeProvider, policy_text: str
) -> None:
    # The policy caps waits at 3 s; the token limit resets in 20 s.
    spent = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "20s"}
    fp.script("a", Fault.status(429, headers=spent), Reply(text="from a"))
    fp.script("b", Reply(text="from b"))
    started = time.monotonic()
    assert _hello(policy_text) == "from b"
    assert time.monotonic() - started < 3.0  # not the capped wait
    assert (fp.attempts("a"), fp.attempts("b")) == (1, 1)
