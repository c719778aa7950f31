"""Receipt records: fields, 6-dp money, UTC times, no prompt by default, no secrets ever."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal

import pytest

from policyroute._lazy import litellm_version
from policyroute.budgets.guard import BudgetCharge
from policyroute.costs.actual import CostResult
from policyroute.costs.receipts import (
    SCHEMA_VERSION,
    attempt_record,
    call_record,
    format_usd,
    policy_identity,
    scrub,
)
from policyroute.errors import AuthenticationError
from policyroute.execution.hooks import (
    Admission,
    AttemptInfo,
    AttemptOutcome,
    CallOutcome,
    Usage,
)

from .helpers import daily_budget, make_policy

MakeAttempt = Callable[..., AttemptInfo]
POLICY_KEY = "my-org-live-key-0f9e8d7c6b5a"


def _attempt_record(attempt: AttemptInfo, outcome: AttemptOutcome, **kw: object) -> dict:
    return attempt_record(
        attempt,
        Admission(params=attempt.params, estimate=Decimal("0.0123456789")),
        outcome,
        usage=Usage(100, 20, cache_read_tokens=50, cache_write_tokens=10, reasoning_tokens=5),
        cost=CostResult(Decimal("0.000123456"), "litellm"),
        now=1767323045.5,
        **kw,  # type: ignore[arg-type]
    )


def test_attempt_record_fields(make_attempt: MakeAttempt) -> None:
    policy = make_policy(budgets=(daily_budget(),))
    attempt = make_attempt(policy, metadata={"user_id": "u-9", "secret_note": "x"})
    outcome = AttemptOutcome(
        status="ok", latency_s=1.25, time_to_first_token_s=0.3, litellm_call_id="lc-1"
    )
    charge = BudgetCharge(
        "per-user-daily", "u-9", "day", Decimal(2), Decimal("1.5"), Decimal("0.25"), (0.75,)
    )
    record = _attempt_record(attempt, outcome, charges=[charge])
    json.dumps(record)  # JSON-ready as is
    name, content_hash = policy_identity(policy)
    assert record["schema_version"] == SCHEMA_VERSION
    assert record["kind"] == "attempt"
    assert (record["policy"], record["policy_hash"]) == (name, content_hash)
    assert content_hash == policy.content_hash
    assert (record["request_id"], record["run_id"]) == (attempt.call.request.request_id, "run-1")
    assert record["litellm_call_id"] == "lc-1"
    assert (record["route"], record["deployment"], record["model"]) == (
        "default",
        "mini",
        "openai/gpt-4o-mini",
    )
    assert record["provider"] == "openai"
    assert [record[k] for k in ("input_tokens", "cache_read_tokens", "cache_write_tokens")] == [
        100,
        50,
        10,
    ]
    assert (record["output_tokens"], record["reasoning_tokens"]) == (20, 5)
    assert (record["estimated_cost"], record["cost"]) == ("0.012346", "0.000123")
    assert record["price_source"] == "litellm"
    assert record["litellm_version"] == litellm_version()
    assert (record["latency_ms"], record["ttft_ms"]) == (1250.0, 300.0)
    assert record["ts"] == "2026-01-02T03:04:05.500+00:00"
    assert dt.datetime.fromisoformat(record["started_at"]) == dt.datetime(
        2026, 1, 2, 3, 4, 4, 250000, tzinfo=dt.timezone.utc
    )
    # Only the metadata budgets are scoped by is reported; other metadata stays out.
    assert record["metadata"] == {"user_id": "u-9"}
    assert record["user"] == "u-9"
    assert record["tags"] == ["prod"]
    assert record["budgets"] == [
        {
            "budget": "per-user-daily",
            "scope": "u-9",
            "window": "day",
            "limit": "2.000000",
            "spent": "1.500000",
            "reserved": "0.250000",
            "remaining": "0.250000",
            "thresholds_crossed": [0.75],
        }
    ]
    assert record["threshold_crossed"] is True
    assert "prompt" not in record
    assert "hello" not in json.dumps(record)


def test_prompt_only_when_the_policy_asks(make_attempt: MakeAttempt) -> None:
    policy = make_policy(include_prompt=True)
    attempt = make_attempt(policy)
    record = _attempt_record(attempt, AttemptOutcome(status="ok"), include_prompt=True)
    assert record["prompt"] == [{"role": "user", "content": "hello"}]


def test_call_record_sums(make_attempt: MakeAttempt) -> None:
    attempt = make_attempt(make_policy())
    outcome = CallOutcome(status="ok", deployment="mini", attempts=3, latency_s=2.0)
    record = call_record(
        attempt.call,
        outcome,
        cost=Decimal("0.1234565"),
        usage=Usage(10, 5),
        model="openai/gpt-4o-mini",
        provider="openai",
    )
    assert record["kind"] == "call"
    assert record["cost"] == "0.123456"  # banker's rounding of the 7th place, never floats
    assert (record["attempts"], record["deployment"], record["status"]) == (3, "mini", "ok")
    assert (record["input_tokens"], record["output_tokens"]) == (10, 5)
    assert record["error_class"] is None


@pytest.mark.parametrize(
    ("message", "leak"),
    [
        ("Incorrect API key provided: sk-proj-AbCdEf1234567890XYZ.", "sk-proj-AbCdEf1234567890XYZ"),
        ("401 {'error': 'bad Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9.abc'}", "eyJhbGciOi"),
        ('request failed: {"api_key": "plainsecretvalue123"}', "plainsecretvalue123"),
        ("x-api-key=ant-secret-zzzzzz rejected", "ant-secret-zzzzzz"),
        ("google said AIzaSyA1234567890abcdefghijklmnopq is invalid", "AIzaSyA1234567890"),
        (f"auth failed for {POLICY_KEY}", POLICY_KEY),
    ],
)
def test_error_messages_are_scrubbed(make_attempt: MakeAttempt, message: str, leak: str) -> None:
    policy = make_policy(api_key_env="TEST_OPENAI_KEY", api_key_value=POLICY_KEY)
    attempt = make_attempt(policy)
    outcome = AttemptOutcome(
        status="error", error=AuthenticationError(message), error_class="authentication"
    )
    record = attempt_record(
        attempt,
        None,
        outcome,
        usage=Usage(),
        cost=CostResult(Decimal(0), "litellm"),
        secrets=(POLICY_KEY,),
    )
    assert leak not in json.dumps(record)
    assert "[REDACTED]" in record["error"]
    assert record["error_class"] == "authentication"


def test_policy_and_candidate_keys_are_scrubbed_through_accounting(
    make_attempt: MakeAttempt,
) -> None:
    from policyroute.accounting import PolicyAccounting
    from policyroute.costs.sinks import CallableSink

    records: list[dict] = []
    policy = make_policy(api_key_env="TEST_OPENAI_KEY", api_key_value=POLICY_KEY)
    acct = PolicyAccounting(policy, guard=None, sinks=[CallableSink(records.append)])
    attempt = make_attempt(policy)
    outcome = AttemptOutcome(
        status="error", error=RuntimeError(f"no luck with {POLICY_KEY}"), error_class="bad_request"
    )
    acct.settle(attempt, acct.admit(attempt), outcome)
    assert POLICY_KEY not in json.dumps(records)


def test_long_errors_are_cut() -> None:
    assert len(scrub("x" * 1000, ())) == 1000  # scrub itself does not cut
    from policyroute.costs.receipts import _error_message

    message = _error_message(RuntimeError("y" * 1000), ())
    assert message is not None
    assert len(message) == 300


def test_format_usd_has_six_places() -> None:
    assert format_usd(Decimal("1")) == "1.000000"
    assert format_usd(Decimal("0.0000005")) == "0.000000"
    assert format_usd(Decimal("0.0000015")) == "0.000002"
    assert format_usd(None) is None
