"""Deterministic receipt cases whose records and JSON lines are pinned byte for byte.

``python -m tests.costs.golden_cases`` (from the repository root) rewrites the golden file;
only do that for a deliberate change of the receipt layout (and bump ``SCHEMA_VERSION`` when a
field changes meaning or disappears).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from policyroute.budgets.guard import BudgetCharge
from policyroute.costs.actual import CostResult
from policyroute.costs.receipts import attempt_record, call_record, policy_secrets
from policyroute.errors import AuthenticationError, BudgetExceeded, RateLimitError
from policyroute.execution.hooks import (
    Admission,
    AttemptInfo,
    AttemptOutcome,
    CallInfo,
    CallOutcome,
    Usage,
)
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.model import BudgetSpec, WindowSpec
from policyroute.request import Request

try:  # imported as part of the test package, or run as a script
    from .helpers import candidate, daily_budget, make_policy
except ImportError:  # pragma: no cover
    from tests.costs.helpers import candidate, daily_budget, make_policy

GOLDEN = Path(__file__).parent / "fixtures" / "receipts_golden.jsonl"
# Values that depend on the installed litellm and on policy hashing, not on receipts.py.
VERSION_TOKEN = "@LITELLM_VERSION@"
HASH_TOKEN = "@POLICY_HASH@"
POLICY_KEY = "my-org-live-key-0f9e8d7c6b5a"
T0 = 1767323045.5


class _Response:
    """Stands in for a litellm ModelResponse: only ``_hidden_params`` is read."""

    def __init__(self, provider: str | None) -> None:
        self._hidden_params = {"custom_llm_provider": provider} if provider else {}


def _call(
    policy: CompiledPolicy,
    n: int,
    *,
    metadata: dict[str, Any],
    messages: list[dict[str, Any]] | None = None,
    tags: tuple[str, ...] = ("prod",),
    run_id: str | None = "run-1",
) -> CallInfo:
    request = Request(
        messages=messages or [{"role": "user", "content": "hello"}],
        metadata=metadata,
        tags=tags,
        run_id=run_id,
        request_id=f"req-{n:04d}",
    )
    return CallInfo(
        request=request, policy=policy, decision=policy.route(request), started_at=T0 - 2.0
    )


def _attempt(call: CallInfo, alias: str = "mini", number: int = 1, retry: int = 0) -> AttemptInfo:
    cand = next(c for c in call.decision.candidates if c.alias == alias)
    return AttemptInfo(
        call=call,
        candidate=cand,
        params={"max_tokens": 100},
        number=number,
        retry=retry,
        route=call.decision.route,
    )


def _charge(
    name: str,
    scope: object,
    limit: str,
    spent: str,
    reserved: str,
    crossed: tuple[float, ...] = (),
    window: object = "day",
) -> BudgetCharge:
    return BudgetCharge(
        name, scope, window, Decimal(limit), Decimal(spent), Decimal(reserved), crossed
    )


def cases() -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, record) for every pinned case, in a fixed order."""
    team_budget = BudgetSpec(
        name="per-team",
        limit_usd=Decimal("50"),
        window=WindowSpec(kind="month"),
        per="metadata.org.team",
    )
    budgets = (daily_budget(), team_budget)
    policy = make_policy(budgets=budgets)

    # Answered, two budgets, provider from the response, one threshold crossed.
    call = _call(policy, 1, metadata={"user_id": "u-9", "org": {"team": "core"}, "x": 1})
    attempt = _attempt(call)
    outcome = AttemptOutcome(
        status="ok",
        response=_Response("openai"),
        usage=Usage(100, 20),
        latency_s=1.25,
        time_to_first_token_s=0.3,
        provider_billed=True,
        litellm_call_id="lc-1",
    )
    yield (
        "answered-attempt",
        attempt_record(
            attempt,
            Admission(params=attempt.params, estimate=Decimal("0.0123456789")),
            outcome,
            usage=Usage(100, 20, cache_read_tokens=50, cache_write_tokens=10, reasoning_tokens=5),
            cost=CostResult(Decimal("0.000123456"), "litellm"),
            charges=[
                _charge("per-user-daily", "u-9", "1", "0.5000005", "0.25", (0.5,)),
                _charge("per-team", "core", "50", "49.9999995", "0.1", (), "month"),
            ],
            now=T0,
        ),
    )
    yield (
        "answered-call",
        call_record(
            call,
            CallOutcome(status="ok", deployment="mini", attempts=1, latency_s=1.2505),
            cost=Decimal("0.000123456"),
            usage=Usage(100, 20, cache_read_tokens=50, cache_write_tokens=10, reasoning_tokens=5),
            model="openai/gpt-4o-mini",
            provider="openai",
            now=T0 + 0.0004,
        ),
    )

    # Errors: a scrubbed message from the candidate's own key, a retry, no response.
    keyed = make_policy(api_key_env="TEST_OPENAI_KEY", api_key_value=POLICY_KEY)
    call = _call(keyed, 2, metadata={"user": "someone"}, tags=(), run_id=None)
    attempt = _attempt(call, number=2, retry=1)
    error = AuthenticationError(
        f"Incorrect API key provided: {POLICY_KEY}\n  and Bearer abcdefghijk.lmn " + "é" * 400
    )
    yield (
        "error-attempt",
        attempt_record(
            attempt,
            None,
            AttemptOutcome(
                status="error",
                error=error,
                error_class="authentication",
                latency_s=-0.5,
                litellm_call_id=None,
            ),
            usage=Usage(),
            cost=CostResult(Decimal(0), "none"),
            secrets=policy_secrets(keyed),
            now=1767225599.9996,
        ),
    )
    yield (
        "error-call",
        call_record(
            call,
            CallOutcome(
                status="error",
                deployment="mini",
                error=RateLimitError("slow down: api_key=abcdef123456 x"),
                attempts=2,
                latency_s=0.1 + 0.2,
                time_to_first_token_s=None,
            ),
            cost=Decimal("0"),
            usage=Usage(),
            model="openai/gpt-4o-mini",
            provider=None,
            secrets=(POLICY_KEY,),
            now=1767225600.0004,
        ),
    )
    yield (
        "plain-error-call",
        call_record(
            call,
            CallOutcome(status="error", error=ValueError("   "), attempts=1),
            cost=Decimal("-0.0000005"),
            usage=Usage(1, 2),
            now=0.0,
        ),
    )

    # Refused by a budget before any attempt: no deployment, no model.
    call = _call(policy, 3, metadata={"user_id": 42, "org": {"team": ("a", Decimal("1.5"))}})
    yield (
        "refused-call",
        call_record(
            call,
            CallOutcome(
                status="refused",
                attempts=0,
                error=BudgetExceeded(
                    budget="daily",
                    scope="42",
                    limit=Decimal("2"),
                    spent=Decimal("1.9999996"),
                    reserved=Decimal("0.05"),
                    estimate=Decimal("0.1"),
                    window="day:2026-01-02",
                ),
            ),
            cost=Decimal(0),
            usage=Usage(),
            now=T0 + 123.456789,
        ),
    )

    # Refused by something that names no budget.
    yield (
        "refused-call-without-budget",
        call_record(
            call,
            CallOutcome(status="refused", attempts=0),
            cost=Decimal(0),
            usage=Usage(),
            now=T0 + 123.456789,
        ),
    )

    # Prompt included, non-ASCII and nested content; provider from a local model's prefix.
    prompted = make_policy(budgets=budgets, include_prompt=True)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Réponds en français ✓"},
        {
            "role": "user",
            "content": [{"type": "text", "text": 'quote " and \\ and \n newline'}],
            "name": None,
        },
    ]
    call = _call(prompted, 4, metadata={"user_id": "ü-1"}, messages=messages)
    attempt = _attempt(call, alias="local")
    yield (
        "prompt-attempt",
        attempt_record(
            attempt,
            Admission(params=attempt.params, estimate=Decimal("12345.6789995")),
            AttemptOutcome(
                status="ok", latency_s=0.000123, time_to_first_token_s=0.0000004, usage=Usage(3)
            ),
            usage=Usage(3, 4),
            cost=CostResult(Decimal("1E-7"), "policy"),
            charges=[_charge("per-user-daily", "ü-1", "1", "2", "0", (0.5, 0.9))],
            include_prompt=True,
            now=T0 + 0.9999,
        ),
    )
    yield (
        "prompt-call",
        call_record(
            call,
            CallOutcome(status="ok", deployment="local", attempts=1, time_to_first_token_s=0.25),
            cost=Decimal("1E-7"),
            usage=Usage(3, 4),
            model="ollama/llama3.1",
            provider="ollama",
            include_prompt=True,
            now=T0 + 1.0,
        ),
    )

    # A model named without a provider prefix: the provider comes from litellm's price map.
    call = _call(policy, 5, metadata={})
    bare = candidate("gpt-4o-mini", alias="bare")
    yield (
        "bare-model-attempt",
        attempt_record(
            AttemptInfo(call=call, candidate=bare, params={}, number=1),
            None,
            AttemptOutcome(status="cancelled"),
            usage=Usage(),
            cost=CostResult(Decimal(0), "litellm"),
            now=1e9 + 0.0015,
        ),
    )


def write_through_sink(records: list[tuple[str, dict[str, Any]]], directory: Path) -> str:
    """Write the records through a dated :class:`JsonlSink`; each file's name and bytes."""
    from policyroute.costs.sinks import JsonlSink

    sink = JsonlSink(directory / "{date}.jsonl")
    for _, record in records:
        sink.write(record)
    sink.close()
    return "".join(
        f"--- {path.name}\n" + path.read_bytes().decode("utf-8")
        for path in sorted(directory.iterdir())
    )


def render(records: list[tuple[str, dict[str, Any]]], directory: Path) -> str:
    """The golden text: each case's JSON line, then what the sink wrote, tokenised."""
    from policyroute._lazy import litellm_version
    from policyroute.costs.sinks import encode_record

    out = [f"{name}\t{encode_record(record).decode('utf-8')}" for name, record in records]
    text = "".join(out) + write_through_sink(records, directory)
    hashes = list(dict.fromkeys(record["policy_hash"] for _, record in records))
    for n, content_hash in enumerate(hashes):
        text = text.replace(content_hash, f"{HASH_TOKEN}{n}")
    version = litellm_version()
    return text.replace(f'"litellm_version":"{version}"', f'"litellm_version":"{VERSION_TOKEN}"')


if __name__ == "__main__":  # pragma: no cover
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.write_text(render(list(cases()), Path(tmp)), encoding="utf-8")
    print(f"wrote {GOLDEN}")
