"""The executor end to end against the fake provider on loopback, sync and async."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from exec_support import RecordingAccounting, Sleeps, StubPolicy, arun, ask, candidate

from policyroute.errors import (
    AllCandidatesFailedError,
    BadRequestError,
    BudgetExceeded,
    ProviderError,
)
from policyroute.execution.breaker import CircuitBreakers
from policyroute.execution.executor import CallResult, Executor
from policyroute.policy.model import CircuitBreakerSpec, DefaultsSpec, RetrySpec
from policyroute.request import Request
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(20)
MODES = ["sync", "async"]


def make(
    fp: FakeProvider, *aliases: str, defaults: DefaultsSpec | None = None, **kw: Any
) -> tuple[Executor, RecordingAccounting, Sleeps]:
    policy = StubPolicy([candidate(a, fp.openai_base) for a in aliases])
    if defaults is not None:
        policy.defaults = defaults
    acct = RecordingAccounting()
    sleeps = Sleeps()
    ex = Executor(policy, accounting=acct, sleep=sleeps, asleep=sleeps.asleep, **kw)
    return ex, acct, sleeps


def run(ex: Executor, mode: str, request: Request | None = None) -> CallResult:
    request = request or ask()
    if mode == "sync":
        return ex.complete(request)
    return arun(ex.acomplete(request))


def attempts(result: CallResult | ProviderError) -> list[tuple[str, str, str | None]]:
    return [(a.alias, a.status, a.error_class) for a in result.attempts]


@pytest.mark.parametrize("mode", MODES)
def test_rate_limit_with_retry_after_is_retried_after_that_wait(fp: FakeProvider, mode: str):
    fp.script("a", Fault.status(429, retry_after=2), Reply(text="ok"))
    ex, acct, sleeps = make(fp, "a", "b")
    result = run(ex, mode)
    assert result.response.choices[0].message.content == "ok"
    assert attempts(result) == [("a", "error", "rate_limit"), ("a", "ok", None)]
    assert sleeps == [2.0]
    assert fp.attempts("a") == 2
    assert fp.attempts("b") == 0
    assert acct.statuses == ["error", "ok"]
    assert [o.status for o in acct.finished] == ["ok"]


@pytest.mark.parametrize("mode", MODES)
def test_rate_limit_without_retry_after_backs_off_exponentially(fp: FakeProvider, mode: str):
    fp.script("a", Fault.status(429), Fault.status(429), Reply(text="ok"))
    ex, _, sleeps = make(fp, "a")
    result = run(ex, mode)
    assert [a.retry for a in result.attempts] == [0, 1, 2]
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.01
    assert 0 <= sleeps[1] <= 0.02


@pytest.mark.parametrize("mode", MODES)
def test_server_errors_exhaust_retries_then_fall_over(fp: FakeProvider, mode: str):
    fp.set_default("a", Fault.status(503))
    ex, _, sleeps = make(fp, "a", "b")
    result = run(ex, mode)
    assert result.deployment == "b"
    assert attempts(result) == [("a", "error", "server_error")] * 3 + [("b", "ok", None)]
    assert len(sleeps) == 2
    assert fp.attempts("a") == 3
    assert result.cost == sum(a.cost for a in result.attempts)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "error_class", "tries_of_a"),
    [
        (Fault.connection_reset(), "connection", 3),
        (Fault.context_length(), "context_window", 1),
        (Fault.content_filter(), "content_policy", 1),
        (Fault.content_filter("content_filter"), "content_policy", 1),
        (Fault.status(401), "authentication", 1),
        # the account cannot pay (OpenRouter's 402 when its credits run out): another
        # deployment can take the same call
        (Fault.status(402), "authentication", 1),
        # the provider may not serve this account or region: another provider may
        (Fault.status(451), "authentication", 1),
        # a retired model, a wrong deployment name: another deployment may serve the call
        (Fault.status(404), "not_found", 1),
        (Fault.status(410), "not_found", 1),
        (Fault.malformed_body(), "malformed_response", 3),
    ],
)
def test_fault_falls_over_to_the_next_candidate(
    fp: FakeProvider, mode: str, fault: Fault, error_class: str, tries_of_a: int
):
    fp.set_default("a", fault)
    ex, _, _ = make(fp, "a", "b")
    result = run(ex, mode)
    assert result.deployment == "b"
    assert attempts(result)[:-1] == [("a", "error", error_class)] * tries_of_a
    assert fp.attempts("a") == tries_of_a


@pytest.mark.parametrize("mode", MODES)
def test_no_response_times_out_and_falls_over(fp: FakeProvider, mode: str):
    fp.script("a", Fault.no_response(timeout=5))
    ex, _, _ = make(fp, "a", "b", defaults=DefaultsSpec(retry=RetrySpec(attempts=0), timeout=0.3))
    result = run(ex, mode)
    assert attempts(result) == [("a", "error", "timeout"), ("b", "ok", None)]


@pytest.mark.parametrize("mode", MODES)
def test_bad_request_stops_the_call(fp: FakeProvider, mode: str):
    fp.script("a", Fault.bad_request("bad 'temperature'", param="temperature"))
    ex, acct, _ = make(fp, "a", "b")
    with pytest.raises(BadRequestError) as info:
        run(ex, mode)
    assert info.value.deployment == "a"
    assert info.value.route == "default"
    assert [a.error_class for a in info.value.attempts] == ["bad_request"]
    assert fp.attempts("b") == 0
    assert [o.status for o in acct.finished] == ["error"]


@pytest.mark.parametrize("mode", MODES)
def test_all_candidates_failed_carries_each_error(fp: FakeProvider, mode: str):
    fp.set_default("*", Fault.status(500))
    ex, acct, _ = make(fp, "a", "b", defaults=DefaultsSpec(retry=RetrySpec(attempts=1)))
    with pytest.raises(AllCandidatesFailedError) as info:
        run(ex, mode)
    err = info.value
    assert [e.deployment for e in err.errors] == ["a", "a", "b", "b"]
    assert len(err.attempts) == 4
    assert err.error_class == "server_error"
    assert len(acct.settled) == 4
    assert len(acct.finished) == 1


@pytest.mark.parametrize("mode", MODES)
def test_payload_defaults_and_no_retry_params_leak(fp: FakeProvider, mode: str):
    policy_defaults = DefaultsSpec(max_tokens=77)
    ex, _, _ = make(fp, "a", defaults=policy_defaults)
    run(ex, mode, ask(params={"stop": ["END"], "temperature": 0.5}))
    body = fp.requests_for("a")[0].body
    assert body["max_tokens"] == 77
    assert body["stop"] == ["END"]
    assert body["temperature"] == 0.5
    assert "num_retries" not in body
    assert "max_retries" not in body
    assert "stream" not in body or body["stream"] is False


@pytest.mark.parametrize("mode", MODES)
def test_route_params_win_over_call_params(fp: FakeProvider, mode: str):
    ex, _, _ = make(fp, "a")
    ex.policy.params = {"temperature": 0.0}  # type: ignore[attr-defined]
    run(ex, mode, ask(params={"temperature": 0.9, "max_tokens": 12}))
    body = fp.requests_for("a")[0].body
    assert body["temperature"] == 0.0
    assert body["max_tokens"] == 12


@pytest.mark.parametrize("mode", MODES)
def test_budget_refusal_propagates_unchanged(fp: FakeProvider, mode: str):
    ex, acct, _ = make(fp, "a")
    refusal = BudgetExceeded(budget="b", scope="s", limit=1, spent=1, reserved=0, estimate=1)  # type: ignore[arg-type]
    acct.refuse = refusal
    with pytest.raises(BudgetExceeded) as info:
        run(ex, mode)
    assert info.value is refusal
    assert fp.attempts("a") == 0
    assert acct.settled == []
    assert [o.status for o in acct.finished] == ["refused"]


@pytest.mark.parametrize("mode", MODES)
def test_budget_downgrade_replaces_the_candidates(fp: FakeProvider, mode: str):
    ex, acct, _ = make(fp, "a", "b")
    ex.policy.groups = {"cheap": [candidate("c", fp.openai_base)]}  # type: ignore[attr-defined]
    acct.downgrade = {"a": "cheap"}
    result = run(ex, mode)
    assert result.deployment == "c"
    assert fp.attempts("a") == 0
    assert fp.attempts("b") == 0
    assert [a.candidate.alias for a in acct.admitted] == ["a", "c"]
    assert len(acct.settled) == 1


def test_breaker_opens_and_recovers_after_cooldown(fp: FakeProvider):
    now = [0.0]
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=2, cooldown=30), clock=lambda: now[0])
    defaults = DefaultsSpec(retry=RetrySpec(attempts=0))
    ex, _, _ = make(fp, "a", "b", defaults=defaults, breakers=breakers)
    fp.schedule_outage("a", failures=2)
    assert run(ex, "sync").deployment == "b"
    assert run(ex, "sync").deployment == "b"
    assert breakers.state("a") == "open"
    assert not ex.stats.is_available("a")  # routing sees the breaker too
    assert attempts(run(ex, "sync")) == [("b", "ok", None)]  # a skipped while open
    assert fp.attempts("a") == 2
    now[0] = 30.0  # cooldown over: one probe, the provider is back up
    assert run(ex, "sync").deployment == "a"
    assert breakers.state("a") == "closed"


def test_every_candidate_open_tries_the_oldest_opened(fp: FakeProvider):
    now = [0.0]
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=30), clock=lambda: now[0])
    ex, _, _ = make(
        fp, "a", "b", defaults=DefaultsSpec(retry=RetrySpec(attempts=0)), breakers=breakers
    )
    breakers.record_failure("b", "server_error")
    now[0] = 1.0
    breakers.record_failure("a", "server_error")
    assert attempts(run(ex, "sync")) == [("b", "ok", None)]


def test_stats_record_latency_and_in_flight(fp: FakeProvider):
    ex, _, _ = make(fp, "a")
    result = run(ex, "sync")
    assert ex.stats.latency("a") == pytest.approx(result.attempts[0].latency_s)
    assert ex.stats.in_flight("a") == 0
    assert ex.policy.routed_with[-1] == (ex.stats, False)  # type: ignore[attr-defined]


def test_cancelled_async_call_still_settles_and_finishes(fp: FakeProvider):
    fp.script("a", Fault.no_response(timeout=5))
    ex, acct, _ = make(fp, "a")

    async def main() -> None:
        task = asyncio.create_task(ex.acomplete(ask()))
        await asyncio.to_thread(fp.wait_for_requests, 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(main())
    assert acct.statuses == ["cancelled"]
    assert [o.status for o in acct.finished] == ["cancelled"]
    assert ex.stats.in_flight("a") == 0


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_beyond_the_cap_falls_over_to_an_available_deployment(
    fp: FakeProvider, mode: str
) -> None:
    # FAST_RETRY caps Retry-After at 5 s: a provider asking for 60 s is not retried after 5 s
    # (it would most likely refuse again) while another deployment can answer now.
    fp.script("a", Fault.status(429, retry_after=60))
    fp.script("b", Reply(text="from b"))
    ex, _, sleeps = make(fp, "a", "b")
    result = run(ex, mode)
    assert result.response.choices[0].message.content == "from b"
    assert attempts(result) == [("a", "error", "rate_limit"), ("b", "ok", None)]
    assert sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_beyond_the_cap_waits_the_cap_when_no_other_deployment_is_left(
    fp: FakeProvider, mode: str
) -> None:
    fp.script("a", Fault.status(429, retry_after=60), Reply(text="ok"))
    ex, _, sleeps = make(fp, "a")
    result = run(ex, mode)
    assert attempts(result) == [("a", "error", "rate_limit"), ("a", "ok", None)]
    assert sleeps == [5.0]
