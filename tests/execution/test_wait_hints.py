"""The wait before a retry: every hint a provider (or a litellm proxy) gives, and its record.

A 429 may say when to come back in a ``Retry-After`` (seconds or an HTTP date), a
``retry-after-ms``, those two forwarded by a litellm proxy as ``llm_provider-…``, or an
``x-ratelimit-reset`` that is a Unix time in milliseconds (OpenRouter), in seconds, or a wait in
seconds. Unit tests pin the reading; end-to-end tests go through real litellm against the fake
provider, sync and async, and check the wait the executor chose, that the attempt after it
records it (``waited_s``, ``wait_source``), and that the attempt receipt says it too.
"""

from __future__ import annotations

import email.utils
import math
import time
from datetime import datetime, timezone
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

from policyroute._lazy import import_litellm
from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink
from policyroute.errors import RateLimitError, ServerError
from policyroute.execution.backoff import wait_source
from policyroute.execution.classify import classify, retry_after_seconds
from policyroute.execution.executor import CallResult, Executor, StreamDone
from policyroute.execution.ratelimit_headers import parse_reset_number, rate_limit_reset_seconds
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.loader import load_policy_text
from policyroute.routing.decision import Candidate
from policyroute.testing import FakeProvider, Fault, Reply

litellm = import_litellm()
pytestmark = pytest.mark.timeout(30)
MODES = ["sync", "async"]
# A provider's hint that the executor took, not FAST_RETRY's backoff (at most this): what a
# timed hint has left once the first call (litellm warming up) has been answered.
BACKOFF_MAX = FAST_RETRY.backoff.max
# 2025-03-07T00:00:00Z, Unix time 1741305600.
T0 = datetime(2025, 3, 7, tzinfo=timezone.utc)


def _unix_ms(seconds_from_now: float) -> str:
    # Rounded down: the wait read back is then never longer than asked, however soon it is read.
    return str(math.floor((time.time() + seconds_from_now) * 1000))


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# --------------------------------------------------------------------------- x-ratelimit-reset


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1741305612500", 12.5),  # OpenRouter: Unix milliseconds
        ("1741305612500.0", 12.5),
        ("1741305630", 30.0),  # Unix seconds
        ("1741305600.75", 0.75),
        ("30", 30.0),  # a wait in seconds
        ("0.25", 0.25),
        ("0", 0.0),
        (" 7 ", 7.0),
        # The boundaries: just below 10**9 is still a wait (of 31 years, capped later).
        ("999999999", 999999999.0),
        ("9999999999", 9999999999.0 - 1741305600.0),  # Unix seconds in the year 2286
        ("999999999999", 999999999999.0 - 1741305600.0),  # Unix seconds, far future
    ],
)
def test_a_reset_number_is_a_unix_time_or_a_wait_by_its_size(text: str, seconds: float) -> None:
    assert parse_reset_number(text, now=T0) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    [
        "1741305599999",  # one millisecond ago
        "1741305000",  # ten minutes ago, in seconds
        "1000000000",  # 2001-09-09, in seconds
        "1000000000000",  # the same instant, in milliseconds
        "-5",
        "inf",
        "nan",
        "soon",
        "",
        "1" * 100,
    ],
)
def test_a_past_or_unreadable_reset_number_gives_no_hint(text: str) -> None:
    assert parse_reset_number(text, now=T0) is None


def test_the_single_reset_header_pairs_with_its_remaining_count() -> None:
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1741305620000"}
    assert rate_limit_reset_seconds(spent, now=T0) == 20.0
    # Not exhausted: the longest reset of all still says when every limit is back.
    assert rate_limit_reset_seconds({**spent, "X-RateLimit-Remaining": "3"}, now=T0) == 20.0


def test_the_single_reset_header_counts_with_the_other_families() -> None:
    headers = {
        "x-ratelimit-remaining": "12",
        "x-ratelimit-reset": "1741305900",  # five minutes
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "2s",
    }
    assert rate_limit_reset_seconds(headers, now=T0) == 2.0
    headers["x-ratelimit-remaining"] = "0"  # both exhausted: the later reset counts
    assert rate_limit_reset_seconds(headers, now=T0) == 300.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2025-03-07T00:00:09Z", 9.0), ("1m30s", 90.0), ("250ms", 0.25)],
)
def test_the_single_reset_header_also_takes_a_time_or_a_duration(
    value: str, seconds: float
) -> None:
    assert rate_limit_reset_seconds({"x-ratelimit-reset": value}, now=T0) == seconds


def test_a_proxy_forwards_the_single_reset_header() -> None:
    forwarded = {"llm_provider-x-ratelimit-remaining": "0", "llm_provider-x-ratelimit-reset": "45"}
    assert rate_limit_reset_seconds(forwarded, now=T0) == 45.0
    # The proxy's own pair wins; the upstream remaining count is not paired with it.
    own = {**forwarded, "x-ratelimit-reset": "3"}
    assert rate_limit_reset_seconds(own, now=T0) == 3.0


# --------------------------------------------------------------------------- Retry-After


class _Headers(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("429")
        self.headers = httpx.Headers(headers)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"llm_provider-retry-after": "4"}, 4.0),
        ({"llm_provider-retry-after-ms": "1500"}, 1.5),
        ({"LLM_Provider-Retry-After-Ms": "20"}, 0.02),
        ({"llm_provider-retry-after": "3", "llm_provider-retry-after-ms": "250"}, 0.25),
        # The proxy's own wait comes first, whichever its unit.
        ({"retry-after": "7", "llm_provider-retry-after-ms": "250"}, 7.0),
        ({"retry-after-ms": "70", "llm_provider-retry-after": "2"}, 0.07),
        # Garbage of the proxy's own leaves the provider's.
        ({"retry-after": "later", "llm_provider-retry-after": "2"}, 2.0),
        ({"retry-after-ms": "inf", "retry-after": "nan", "llm_provider-retry-after": "2"}, 2.0),
    ],
)
def test_a_proxy_forwards_the_providers_retry_after(
    headers: dict[str, str], seconds: float
) -> None:
    assert retry_after_seconds(_Headers(headers)) == pytest.approx(seconds)


@pytest.mark.parametrize("name", ["retry-after", "llm_provider-retry-after"])
def test_a_retry_after_date_counts_from_now(name: str) -> None:
    wait = retry_after_seconds(_Headers({name: _http_date(30)}))
    assert wait is not None
    assert 28.0 <= wait <= 30.0
    assert retry_after_seconds(_Headers({name: _http_date(-30)})) is None


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "9" * 100])
def test_a_retry_after_that_is_no_wait_gives_no_hint(value: str) -> None:
    assert retry_after_seconds(_Headers({"retry-after": value})) is None


def _rate_limited(headers: dict[str, str]) -> BaseException:
    request = httpx.Request("POST", "http://x")
    response = httpx.Response(429, headers=headers, request=request)
    return litellm.RateLimitError("slow", "openai", "gpt-x", response=response)


def test_classify_says_where_the_wait_came_from() -> None:
    by_header = classify(_rate_limited({"llm_provider-retry-after": "2"}))
    assert (by_header.retry_after, by_header.retry_after_source) == (2.0, "retry_after")
    by_reset = classify(_rate_limited({"x-ratelimit-reset": _unix_ms(20)}))
    assert by_reset.retry_after_source == "rate_limit_reset"
    assert by_reset.retry_after is not None
    assert 18.0 <= by_reset.retry_after <= 20.0
    bare = classify(_rate_limited({}))
    assert (bare.retry_after, bare.retry_after_source) == (None, None)


def test_the_wait_source_of_an_error() -> None:
    assert wait_source(ServerError("503")) == "backoff"
    assert wait_source(RateLimitError("429", retry_after=0.0)) == "retry_after"
    assert wait_source(classify(_rate_limited({"x-ratelimit-reset": "5"}))) == "rate_limit_reset"


# --------------------------------------------------------------------------- end to end


def _executor(candidates: list[Candidate], sleeps: Sleeps) -> Executor:
    return Executor(
        StubPolicy(candidates),
        accounting=RecordingAccounting(),
        sleep=sleeps,
        asleep=sleeps.asleep,
    )


def _run(ex: Executor, mode: str) -> CallResult:
    if mode == "sync":
        return ex.complete(ask())
    return arun(ex.acomplete(ask()))


def _waits(result: Any) -> list[tuple[str, float, str | None]]:
    return [(a.alias, a.waited_s, a.wait_source) for a in result.attempts]


@pytest.mark.parametrize("mode", MODES)
def test_openrouters_unix_ms_reset_is_waited_and_recorded(fp: FakeProvider, mode: str) -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": _unix_ms(4.5)}
    fp.script("a", Fault.status(429, headers=headers), Reply(text="ok"))
    sleeps = Sleeps()
    result = _run(_executor([candidate("a", fp.openai_base)], sleeps), mode)
    assert result.response.choices[0].message.content == "ok"
    assert len(sleeps) == 1
    assert BACKOFF_MAX < sleeps[0] <= 4.5  # counted from when the answer was read
    assert _waits(result) == [("a", 0.0, None), ("a", sleeps[0], "rate_limit_reset")]


@pytest.mark.parametrize(
    ("reset", "low", "high"),
    [
        (lambda: str(int(time.time()) + 4), BACKOFF_MAX, 4.0),  # Unix seconds: whole ones
        (lambda: "2", 2.0, 2.0),  # a wait in seconds
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_unix_seconds_and_plain_waits_are_told_apart(
    fp: FakeProvider, mode: str, reset: Any, low: float, high: float
) -> None:
    fp.script("a", Fault.status(429, headers={"x-ratelimit-reset": reset()}), Reply(text="ok"))
    sleeps = Sleeps()
    result = _run(_executor([candidate("a", fp.openai_base)], sleeps), mode)
    assert len(sleeps) == 1
    assert low <= sleeps[0] <= high
    assert result.attempts[1].wait_source == "rate_limit_reset"
    assert result.attempts[1].waited_s == sleeps[0]


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"llm_provider-retry-after-ms": "1500"}, 1.5),
        ({"llm_provider-retry-after": "3"}, 3.0),
        ({"retry-after-ms": "40"}, 0.04),
        # The proxy's Retry-After beats the upstream reset it also forwards.
        ({"llm_provider-retry-after": "1", "llm_provider-x-ratelimit-reset": "4"}, 1.0),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_a_proxied_retry_after_is_waited_and_recorded(
    fp: FakeProvider, mode: str, headers: dict[str, str], wait: float
) -> None:
    fp.script("a", Fault.status(429, headers=headers), Reply(text="ok"))
    sleeps = Sleeps()
    result = _run(_executor([candidate("a", fp.openai_base)], sleeps), mode)
    assert sleeps == [pytest.approx(wait)]
    assert _waits(result) == [("a", 0.0, None), ("a", sleeps[0], "retry_after")]


@pytest.mark.parametrize("name", ["Retry-After", "llm_provider-retry-after"])
@pytest.mark.parametrize("mode", MODES)
def test_a_retry_after_date_is_waited(fp: FakeProvider, mode: str, name: str) -> None:
    fp.script("a", Fault.status(429, headers={name: _http_date(4)}), Reply(text="ok"))
    sleeps = Sleeps()
    result = _run(_executor([candidate("a", fp.openai_base)], sleeps), mode)
    assert len(sleeps) == 1
    assert BACKOFF_MAX < sleeps[0] <= 4.0  # HTTP dates are whole seconds
    assert result.attempts[1].wait_source == "retry_after"


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "<far>"},
        {"llm_provider-retry-after-ms": "3600000"},
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_a_hint_past_the_cap_waits_the_cap_when_nothing_else_is_left(
    fp: FakeProvider, mode: str, headers: dict[str, str]
) -> None:
    headers = {k: _unix_ms(3600) if v == "<far>" else v for k, v in headers.items()}
    fp.script("a", Fault.status(429, headers=headers), Reply(text="ok"))
    sleeps = Sleeps()
    result = _run(_executor([candidate("a", fp.openai_base)], sleeps), mode)
    assert sleeps == [FAST_RETRY.retry_after_max]
    assert result.attempts[1].waited_s == FAST_RETRY.retry_after_max


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "<far>"},
        {"llm_provider-retry-after": "3600"},
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_a_hint_past_the_cap_falls_over_without_waiting(
    fp: FakeProvider, mode: str, headers: dict[str, str]
) -> None:
    headers = {k: _unix_ms(3600) if v == "<far>" else v for k, v in headers.items()}
    fp.script("a", Fault.status(429, headers=headers))
    fp.script("b", Reply(text="from b"))
    sleeps = Sleeps()
    ex = _executor([candidate("a", fp.openai_base), candidate("b", fp.openai_base)], sleeps)
    result = _run(ex, mode)
    assert result.response.choices[0].message.content == "from b"
    assert sleeps == []
    assert _waits(result) == [("a", 0.0, None), ("b", 0.0, None)]


@pytest.mark.parametrize("mode", MODES)
def test_a_past_unix_reset_leaves_the_backoff(fp: FakeProvider, mode: str) -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": _unix_ms(-60)}
    fp.script("a", Fault.status(429, headers=headers), Reply(text="ok"))
    sleeps = Sleeps()
    result = _run(_executor([candidate("a", fp.openai_base)], sleeps), mode)
    assert len(sleeps) == 1
    assert 0.0 <= sleeps[0] <= FAST_RETRY.backoff.initial
    assert _waits(result)[1] == ("a", sleeps[0], "backoff")


@pytest.mark.parametrize("mode", MODES)
def test_each_attempt_records_the_wait_before_it(fp: FakeProvider, mode: str) -> None:
    # a: backoff after a 503, then Retry-After, then its retries are spent; b: no wait.
    fp.script(
        "a",
        Fault.status(503),
        Fault.status(429, headers={"retry-after-ms": "30"}),
        Fault.status(429, headers={"retry-after-ms": "30"}),
    )
    fp.script("b", Reply(text="from b"))
    sleeps = Sleeps()
    ex = _executor([candidate("a", fp.openai_base), candidate("b", fp.openai_base)], sleeps)
    result = _run(ex, mode)
    assert len(sleeps) == 2
    assert _waits(result) == [
        ("a", 0.0, None),
        ("a", sleeps[0], "backoff"),
        ("a", pytest.approx(0.03), "retry_after"),
        ("b", 0.0, None),
    ]
    # What response metadata and _hidden_params["policyroute"] show.
    rows = [a.as_dict() for a in result.attempts]
    assert [(r["deployment"], r["waited_s"], r["wait_source"]) for r in rows] == _waits(result)


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_records_the_wait_too(fp: FakeProvider, mode: str) -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": _unix_ms(4.5)}
    fp.script("a", Fault.status(429, headers=headers), Reply(text="streamed"))
    sleeps = Sleeps()
    ex = _executor([candidate("a", fp.openai_base)], sleeps)
    events = stream_in_mode(ex, ask(), mode)
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert len(sleeps) == 1
    assert BACKOFF_MAX < sleeps[0] <= 4.5
    assert _waits(done.result) == [("a", 0.0, None), ("a", sleeps[0], "rate_limit_reset")]
    summary = done.result.summary()["attempts"]
    assert summary[1]["waited_s"] == sleeps[0]


# --------------------------------------------------------------------------- receipts

POLICY = """
policyroute: 1
name: wait-receipts
models:
  a: {{model: openai/a, api_base: "{base}", api_key: "${{PR_WAIT_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes:
  - name: default
    to: a
defaults:
  max_tokens: 10
  retry: {{attempts: 2, retry_after_max: 3s, backoff: {{initial: 10ms, max: 20ms}}}}
"""


@pytest.fixture
def policy(fp: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> CompiledPolicy:
    monkeypatch.setenv("PR_WAIT_KEY", "sk-wait-0123456789")
    return load_policy_text(POLICY.format(base=fp.openai_base))


@pytest.mark.parametrize("mode", MODES)
def test_attempt_receipts_say_how_long_the_executor_waited(
    fp: FakeProvider, policy: CompiledPolicy, mode: str
) -> None:
    fp.script(
        "a",
        Fault.status(429, headers={"llm_provider-retry-after-ms": "1250"}),
        Fault.status(429, headers={"X-RateLimit-Reset": "60"}),  # past the 3 s cap: capped
        Reply(text="ok"),
    )
    receipts: list[dict[str, Any]] = []
    sleeps = Sleeps()
    with PolicyAccounting.from_policy(policy, sinks=[CallableSink(receipts.append)]) as acct:
        ex = Executor(policy, accounting=acct, sleep=sleeps, asleep=sleeps.asleep)
        _run(ex, mode)
    assert sleeps == [1.25, 3.0]
    attempts = [r for r in receipts if r["kind"] == "attempt"]
    assert [(r["retry"], r["waited_ms"], r["wait_source"]) for r in attempts] == [
        (0, 0.0, None),
        (1, 1250.0, "retry_after"),
        (2, 3000.0, "rate_limit_reset"),
    ]
    # The wait is not the attempt's latency: the provider answered at once.
    assert all(r["latency_ms"] < 1000.0 for r in attempts)
    # Keys follow retry, in the receipt's documented order.
    keys = list(attempts[0])
    assert keys[keys.index("retry") + 1 : keys.index("retry") + 3] == ["waited_ms", "wait_source"]
