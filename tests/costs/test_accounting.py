"""PolicyAccounting: settle once per attempt, finish once per call, thresholds, sink failures."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import warnings
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest

from policyroute.accounting import (
    BudgetThresholdWarning,
    PolicyAccounting,
    ThresholdEvent,
    _clear_default_cache,
    default_accounting,
)
from policyroute.costs.sinks import CallableSink, JsonlSink, SqliteSink
from policyroute.errors import RateLimitError, ReceiptError, StreamInterruptedError
from policyroute.execution.hooks import (
    AttemptInfo,
    AttemptOutcome,
    CallOutcome,
    Usage,
)
from policyroute.policy.model import ReceiptsSpec

from .fakes import FakeGuard
from .helpers import daily_budget, make_policy

MakeAttempt = Callable[..., AttemptInfo]


def _response(prompt: int, completion: int) -> Any:
    return litellm.ModelResponse(
        model="gpt-4o-mini",
        usage=litellm.Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        ),
    )


def _ok(prompt: int = 1000, completion: int = 200) -> AttemptOutcome:
    return AttemptOutcome(
        status="ok",
        response=_response(prompt, completion),
        latency_s=0.25,
        time_to_first_token_s=0.1,
        provider_billed=True,
        litellm_call_id="call-1",
    )


def _accounting(
    guard: FakeGuard | None = None, **kwargs: Any
) -> tuple[PolicyAccounting, list[Mapping[str, Any]]]:
    records: list[Mapping[str, Any]] = []
    policy = make_policy(budgets=(daily_budget(),))
    acct = PolicyAccounting(policy, guard=guard, sinks=[CallableSink(records.append)], **kwargs)
    return acct, records


def test_settle_once_per_attempt_and_finish_once_per_call(make_attempt: MakeAttempt) -> None:
    guard = FakeGuard(limit=Decimal(100))
    acct, records = _accounting(guard)
    first = make_attempt(acct.policy, alias="mini", number=1)
    failed = AttemptOutcome(
        status="error",
        error=RateLimitError("429 slow down"),
        error_class="rate_limit",
        provider_billed=False,
    )
    assert acct.settle(first, acct.admit(first), failed) == Decimal(0)
    second = make_attempt(acct.policy, alias="mini", number=2, call=first.call)
    cost = acct.settle(second, acct.admit(second), _ok())
    # gpt-4o-mini: 1000 * 0.15/M + 200 * 0.6/M
    assert cost == Decimal("0.000270000")
    acct.finish(first.call, CallOutcome(status="ok", deployment="mini", attempts=2, cost=cost))

    assert [c for _, c in guard.settled] == [Decimal(0), cost]
    assert [r["kind"] for r in records] == ["attempt", "attempt", "call"]
    a1, a2, call = records
    assert (a1["status"], a1["error_class"], a1["cost"]) == ("error", "rate_limit", "0.000000")
    assert (a2["attempt"], a2["cost"], a2["price_source"]) == (2, "0.000270", "litellm")
    assert a2["estimated_cost"] == "0.005000"
    assert a2["input_tokens"] == 1000
    assert a2["output_tokens"] == 200
    assert call["cost"] == "0.000270"
    assert call["attempts"] == 2
    assert call["deployment"] == "mini"
    assert call["model"] == "openai/gpt-4o-mini"
    assert call["provider"] == "openai"
    assert call["input_tokens"] == 1000
    assert {r["request_id"] for r in records} == {first.call.request.request_id}


def test_no_guard_admits_params_untouched(make_attempt: MakeAttempt) -> None:
    acct, _ = _accounting(None)
    attempt = make_attempt(acct.policy)
    admission = acct.admit(attempt)
    assert admission.params is attempt.params
    assert admission.estimate is None


def test_billed_provider_error_costs_its_input_only(make_attempt: MakeAttempt) -> None:
    acct, records = _accounting(None)
    attempt = make_attempt(acct.policy, alias="local")  # policy price: $1 in, $2 out per M
    outcome = AttemptOutcome(
        status="error",
        usage=Usage(input_tokens=1_000_000, output_tokens=500_000),
        error_class="server_error",
        error=RuntimeError("boom"),
        provider_billed=True,
    )
    assert acct.settle(attempt, acct.admit(attempt), outcome) == Decimal(1)
    assert records[0]["output_tokens"] == 0
    assert records[0]["price_source"] == "policy"


def test_interrupted_stream_costs_the_usage_seen(make_attempt: MakeAttempt) -> None:
    acct, records = _accounting(None)
    attempt = make_attempt(acct.policy, alias="local")
    outcome = AttemptOutcome(
        status="interrupted",
        usage=Usage(input_tokens=1_000_000, output_tokens=250_000),
        provider_billed=True,
    )
    assert acct.settle(attempt, acct.admit(attempt), outcome) == Decimal("1.5")
    assert records[0]["status"] == "interrupted"


def test_stream_cut_before_its_usage_chunk_is_priced_from_counted_tokens(
    make_attempt: MakeAttempt,
) -> None:
    acct, records = _accounting(None)
    attempt = make_attempt(acct.policy, alias="local")  # $1 in, $2 out per M tokens
    partial = "The first half of an answer that never finished because the connection"
    outcome = AttemptOutcome(
        status="interrupted",
        error=StreamInterruptedError("reset", partial_text=partial),
        error_class="connection",
        provider_billed=True,
    )
    cost = acct.settle(attempt, acct.admit(attempt), outcome)
    receipt = records[0]
    counted_in = litellm.token_counter(
        model="ollama/llama3.1", messages=attempt.call.request.messages
    )
    counted_out = litellm.token_counter(model="ollama/llama3.1", text=partial)
    assert (receipt["input_tokens"], receipt["output_tokens"]) == (counted_in, counted_out)
    assert cost == (Decimal(counted_in) + 2 * Decimal(counted_out)) / 1_000_000


def test_billed_attempt_without_usage_counts_the_input(make_attempt: MakeAttempt) -> None:
    acct, records = _accounting(None)
    attempt = make_attempt(acct.policy, alias="local")
    outcome = AttemptOutcome(status="cancelled", provider_billed=True)
    assert acct.settle(attempt, acct.admit(attempt), outcome) > 0
    assert records[0]["input_tokens"] > 0


def test_threshold_fires_warning_log_callback_and_receipt_flag(
    make_attempt: MakeAttempt, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[ThresholdEvent] = []
    guard = FakeGuard(limit=Decimal("0.0005"))
    acct, records = _accounting(guard, on_threshold=events.append)
    attempt = make_attempt(acct.policy)
    with (
        caplog.at_level(logging.WARNING, logger="policyroute.budgets"),
        pytest.warns(BudgetThresholdWarning, match="per-user-daily"),
    ):
        acct.settle(attempt, acct.admit(attempt), _ok())  # 0.00027 of 0.0005: crosses 50%
    assert [e.threshold for e in events] == [0.5]
    assert events[0].scope == "u-1"
    assert events[0].remaining == Decimal("0.00023")
    assert any("crossed 50%" in r.getMessage() for r in caplog.records)
    receipt = records[0]
    assert receipt["threshold_crossed"] is True
    assert receipt["budgets"] == [
        {
            "budget": "per-user-daily",
            "scope": "u-1",
            "window": "day",
            "limit": "0.000500",
            "spent": "0.000270",
            "reserved": "0.000000",
            "remaining": "0.000230",
            "thresholds_crossed": [0.5],
        }
    ]
    # Below the next threshold nothing fires again.
    second = make_attempt(acct.policy, number=2, call=attempt.call)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acct.settle(second, acct.admit(second), _ok(prompt=10, completion=10))
    assert len(events) == 1


def test_warnings_as_errors_never_fail_an_answered_call(make_attempt: MakeAttempt) -> None:
    events: list[ThresholdEvent] = []

    def broken_callback(event: ThresholdEvent) -> None:
        events.append(event)
        raise RuntimeError("callback bug")

    acct, records = _accounting(FakeGuard(limit=Decimal("0.0004")), on_threshold=broken_callback)
    attempt = make_attempt(acct.policy)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BudgetThresholdWarning)
        cost = acct.settle(attempt, acct.admit(attempt), _ok())
    assert cost > 0
    assert len(events) == 1
    assert len(records) == 1


def test_failing_sink_keeps_the_receipt_and_logs_at_error(
    make_attempt: MakeAttempt, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(record: Mapping[str, Any]) -> None:
        raise OSError("disk full")

    kept: list[Mapping[str, Any]] = []
    policy = make_policy()
    acct = PolicyAccounting(
        policy, guard=None, sinks=[CallableSink(refuse), CallableSink(kept.append)]
    )
    attempt = make_attempt(policy)
    with caplog.at_level(logging.ERROR, logger="policyroute.accounting"):
        cost = acct.settle(attempt, acct.admit(attempt), _ok())
    assert cost > 0
    assert len(kept) == 1  # the healthy sink still got it
    assert list(acct.unwritten) == kept
    assert any(r.levelno == logging.ERROR and "disk full" in r.getMessage() for r in caplog.records)


def test_unwritten_fallback_is_bounded(make_attempt: MakeAttempt) -> None:
    def refuse(record: Mapping[str, Any]) -> None:
        raise ReceiptError("nope")

    policy = make_policy()
    acct = PolicyAccounting(policy, guard=None, sinks=[CallableSink(refuse)])
    acct.unwritten = type(acct.unwritten)(maxlen=3)
    attempt = make_attempt(policy)
    logging.getLogger("policyroute.accounting").disabled = True
    try:
        for n in range(5):
            attempt.number = n + 1
            acct.settle(attempt, acct.admit(attempt), _ok())
    finally:
        logging.getLogger("policyroute.accounting").disabled = False
    assert [r["attempt"] for r in acct.unwritten] == [3, 4, 5]


@pytest.mark.asyncio
async def test_async_path_writes_sqlite_and_jsonl(
    make_attempt: MakeAttempt, tmp_path: Path
) -> None:
    guard = FakeGuard(limit=Decimal(100))
    policy = make_policy()
    jsonl = JsonlSink(tmp_path / "r-{date}.jsonl")
    sqlite = SqliteSink(tmp_path / "r.sqlite3")
    acct = PolicyAccounting(policy, guard=guard, sinks=[jsonl, sqlite])
    attempt = make_attempt(policy)
    admission = await acct.aadmit(attempt)
    cost = await acct.asettle(attempt, admission, _ok())
    await acct.afinish(attempt.call, CallOutcome(status="ok", deployment="mini", attempts=1))
    acct.close()
    assert guard.settled == [(admission, cost)]
    (jsonl_file,) = tmp_path.glob("r-*.jsonl")
    assert len(jsonl_file.read_text().splitlines()) == 2
    with contextlib.closing(sqlite3.connect(tmp_path / "r.sqlite3")) as conn:
        rows = conn.execute("SELECT kind, cost FROM receipts ORDER BY id").fetchall()
    assert rows == [("attempt", "0.000270"), ("call", "0.000270")]


def test_default_accounting_is_shared_per_policy_and_cwd(
    tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = make_policy()
    try:
        first = default_accounting(policy)
        assert default_accounting(make_policy()) is first  # same content, same cwd
        assert isinstance(first, PolicyAccounting)
        # receipts: none and no budgets: nothing to guard, nowhere to write
        assert first.guard is None
        assert first.sinks == ()
        other = tmp_cwd / "other"
        other.mkdir()
        monkeypatch.chdir(other)
        assert default_accounting(policy) is not first
    finally:
        _clear_default_cache()


def test_default_accounting_builds_the_policy_sink(
    tmp_cwd: Path, make_attempt: MakeAttempt
) -> None:
    from dataclasses import replace

    from policyroute.policy.compile import compile_policy

    base = make_policy()
    spec = replace(base.spec, receipts=ReceiptsSpec(sink="jsonl", path="out/{date}.jsonl"))
    policy = compile_policy(spec)
    try:
        acct = default_accounting(policy)
        assert isinstance(acct, PolicyAccounting)
        attempt = make_attempt(policy)
        acct.settle(attempt, acct.admit(attempt), _ok())
        (written,) = (tmp_cwd / "out").glob("*.jsonl")
        assert os.path.getsize(written) > 0
    finally:
        _clear_default_cache()


def test_with_the_real_guard_receipts_carry_budget_state(
    tmp_cwd: Path, make_attempt: MakeAttempt
) -> None:
    from dataclasses import replace

    from policyroute.budgets.guard import BudgetGuard
    from policyroute.policy.compile import compile_policy

    base = make_policy(budgets=(daily_budget(limit="0.001"),))
    policy = compile_policy(
        replace(base.spec, receipts=ReceiptsSpec(sink="jsonl", path="r/{date}.jsonl"))
    )
    events: list[ThresholdEvent] = []
    try:
        acct = default_accounting(policy)
        assert isinstance(acct, PolicyAccounting)
        assert isinstance(acct.guard, BudgetGuard)
        acct.on_threshold = events.append
        attempt = make_attempt(policy)
        admission = acct.admit(attempt)
        assert admission.estimate is not None
        with pytest.warns(BudgetThresholdWarning):
            cost = acct.settle(attempt, admission, _ok(prompt=3000, completion=100))
        acct.finish(attempt.call, CallOutcome(status="ok", deployment="mini", attempts=1))
    finally:
        _clear_default_cache()
    assert cost == Decimal("0.000510000")  # 3000*0.15/M + 100*0.6/M: 51% of $0.001
    (path,) = (tmp_cwd / "r").glob("*.jsonl")
    attempt_receipt, call_receipt = (json.loads(x) for x in path.read_text().splitlines())
    (budget,) = attempt_receipt["budgets"]
    assert budget["budget"] == "per-user-daily"
    assert budget["scope"] == "u-1"
    assert (budget["limit"], budget["spent"], budget["reserved"]) == (
        "0.001000",
        "0.000510",
        "0.000000",
    )
    assert budget["remaining"] == "0.000490"
    assert budget["thresholds_crossed"] == [0.5]
    assert attempt_receipt["threshold_crossed"] is True
    assert [e.threshold for e in events] == [0.5]
    assert call_receipt["cost"] == "0.000510"


def test_default_accounting_sqlite_sink_uses_its_own_default_path(tmp_cwd: Path) -> None:
    from dataclasses import replace

    from policyroute.policy.compile import compile_policy

    spec = replace(make_policy().spec, receipts=ReceiptsSpec(sink="sqlite"))
    try:
        acct = default_accounting(compile_policy(spec))
        assert isinstance(acct, PolicyAccounting)
        (sink,) = acct.sinks
        assert isinstance(sink, SqliteSink)
        assert sink.path == tmp_cwd / ".policyroute" / "receipts.sqlite3"
    finally:
        _clear_default_cache()


@pytest.mark.asyncio
async def test_async_path_runs_blocking_sinks_off_the_event_loop(make_attempt: MakeAttempt) -> None:
    import threading

    loop_thread = threading.get_ident()
    blocking_threads: list[int] = []
    inline_threads: list[int] = []
    policy = make_policy()
    acct = PolicyAccounting(
        policy,
        guard=None,
        sinks=[
            CallableSink(lambda r: blocking_threads.append(threading.get_ident()), blocking=True),
            CallableSink(lambda r: inline_threads.append(threading.get_ident())),
        ],
    )
    attempt = make_attempt(policy)
    await acct.asettle(attempt, await acct.aadmit(attempt), _ok())
    await acct.afinish(attempt.call, CallOutcome(status="ok", deployment="mini", attempts=1))
    assert len(blocking_threads) == 2
    assert loop_thread not in blocking_threads
    assert inline_threads == [loop_thread, loop_thread]
