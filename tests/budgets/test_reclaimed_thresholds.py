"""A threshold crossed by reclaiming a dead process's reservation reaches the caller that
reclaimed it: warning, log record, ``on_threshold``, LangChain event and receipt.

Another process (simulated by a reservation made straight on the store) reserved its worst
case and died. The next reservation on the store reclaims it and records that worst case as
spend; when that crosses a ``warn_at`` threshold, the call that reserved reports it, marked as
reclaimed, whether its own reservation was admitted or refused.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler

import policyroute
from budgets.helpers import attempt, budget, fixed_counter, policy
from policyroute.accounting import BudgetThresholdWarning, PolicyAccounting, ThresholdEvent
from policyroute.budgets import BudgetGuard, ReservedLine
from policyroute.budgets.stores.base import BudgetStore
from policyroute.budgets.windows import line_key, window_for
from policyroute.costs.sinks import CallableSink
from policyroute.errors import BudgetExceeded
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.events import EVENT_NAME
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.loader import load_policy
from policyroute.policy.model import OnExceed
from policyroute.testing import FakeProvider


# Memory and SQLite time leases (and rolling windows) by the ``now`` they are given, which these
# tests move; Redis times them by its server's clock, tested in test_redis_server_clock.py.
@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


D = Decimal
NOW = 1_750_000_000.0
DEAD_LEASE = 60.0
MESSAGES = [{"role": "user", "content": "hello"}]
# 10 tokens in at $1000/M and max_tokens 10 out at $2000/M: $0.03 reserved per call; the fake
# provider's answer (7 in, 3 out) costs $0.013.
WORST = D("0.03")
POLICY = """\
policyroute: 1
name: reclaimed-{name}
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_FAULT_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
budgets:
  - name: daily
    limit_usd: 0.1
    window: day
    warn_at: [{warn_at}]
store: {{backend: memory}}
receipts: {{sink: none}}
defaults: {{max_tokens: 10}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, UUID]] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data, run_id))


class Setup:
    """A policy, its guard on ``store`` with a fake clock, and what accounting reported."""

    def __init__(self, tmp_path: Path, fp: FakeProvider, store: BudgetStore, warn_at: str):
        path = tmp_path / "policy.yaml"
        name = tmp_path.name.lower().replace("_", "-")[-40:]
        path.write_text(
            POLICY.format(name=name, base=fp.openai_base, warn_at=warn_at), encoding="utf-8"
        )
        self.policy: CompiledPolicy = load_policy(path)
        self.store = store
        self.clock = Clock()
        self.guard = BudgetGuard(
            self.policy, store, clock=self.clock, token_counter=fixed_counter(10)
        )
        self.events: list[ThresholdEvent] = []
        self.receipts: list[dict[str, Any]] = []
        self.acct = PolicyAccounting(
            self.policy,
            guard=self.guard,
            sinks=[CallableSink(self.receipts.append)],
            on_threshold=self.events.append,
        )

    def dead_reservations(self, count: int) -> None:
        """``count`` reservations of the call's worst case whose process then died."""
        spec = self.policy.spec.budgets[0]
        window = window_for(spec.window, self.clock.now)
        held = ReservedLine(spec, "*", window, line_key(spec.name, "*", window.key))
        for i in range(count):
            result = self.store.reserve(
                [held.reserve_line(WORST)],
                reservation_id=f"dead-{i}",
                lease_seconds=DEAD_LEASE,
                now=self.clock.now,
            )
            assert result.ok
        self.clock.now += DEAD_LEASE + 1

    def attempt_receipts(self) -> list[dict[str, Any]]:
        return [r for r in self.receipts if r["kind"] == "attempt"]


@pytest.fixture
def quiet() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BudgetThresholdWarning)
        yield caught


def test_an_admitted_call_that_reclaims_reports_the_crossing_with_its_receipt(
    tmp_path: Path,
    fake_provider: FakeProvider,
    store: BudgetStore,
    quiet: list[warnings.WarningMessage],
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Setup(tmp_path, fake_provider, store, "0.25, 0.75")
    s.dead_reservations(1)  # $0.03 of $0.1: 30%, past 25%
    with caplog.at_level(logging.WARNING, logger="policyroute.budgets"):
        policyroute.completion(policy=s.policy, messages=MESSAGES, accounting=s.acct)

    (event,) = s.events
    assert (event.budget, event.scope, event.threshold, event.reclaimed) == (
        "daily",
        "*",
        0.25,
        True,
    )
    assert event.spent == WORST  # the reclaimed worst case; this call's own spend comes later
    assert "reclaiming expired reservations" in event.describe()
    assert [str(w.message) for w in quiet] == [event.describe()]
    assert [r.message for r in caplog.records if hasattr(r, "policyroute_threshold")] == [
        event.describe()
    ]
    (receipt,) = s.attempt_receipts()
    assert receipt["threshold_crossed"] is True
    assert [
        (b["budget"], b["thresholds_crossed"], b.get("reclaimed")) for b in receipt["budgets"]
    ] == [
        ("daily", [], None),
        ("daily", [0.25], True),
    ]
    # Reported once: the next call crosses nothing.
    s.events.clear()
    policyroute.completion(policy=s.policy, messages=MESSAGES, accounting=s.acct)
    assert s.events == []


def test_a_refused_call_that_reclaims_still_reports_the_crossing(
    tmp_path: Path,
    fake_provider: FakeProvider,
    store: BudgetStore,
    quiet: list[warnings.WarningMessage],
) -> None:
    s = Setup(tmp_path, fake_provider, store, "0.5, 0.75")
    s.dead_reservations(3)  # $0.09 of $0.1: past 50% and 75%, and no room for $0.03 more
    with pytest.raises(BudgetExceeded) as refused:
        policyroute.completion(policy=s.policy, messages=MESSAGES, accounting=s.acct)

    assert refused.value.spent == D("0.09")
    assert [(e.threshold, e.reclaimed, e.spent) for e in s.events] == [
        (0.5, True, D("0.09")),
        (0.75, True, D("0.09")),
    ]
    assert len(quiet) == 2
    assert fake_provider.requests == []
    # The spend is recorded and the thresholds fired: refused again, nothing reported twice.
    s.events.clear()
    with pytest.raises(BudgetExceeded):
        policyroute.completion(policy=s.policy, messages=MESSAGES, accounting=s.acct)
    assert s.events == []


@pytest.mark.parametrize("refused", [False, True], ids=["admitted", "refused"])
def test_the_crossing_reaches_the_langchain_callbacks_of_the_call_that_reclaimed(
    tmp_path: Path,
    fake_provider: FakeProvider,
    store: BudgetStore,
    quiet: list[warnings.WarningMessage],
    refused: bool,
) -> None:
    s = Setup(tmp_path, fake_provider, store, "0.25")
    s.dead_reservations(3 if refused else 1)
    chat = ChatPolicyRoute(policy=s.policy, accounting=s.acct)
    recorder = Recorder()
    config: Any = {"callbacks": [recorder], "run_id": UUID(int=11)}
    if refused:
        with pytest.raises(BudgetExceeded):
            chat.invoke("hello", config=config)
    else:
        chat.invoke("hello", config=config)

    ((name, data, run_id),) = recorder.events
    assert (name, run_id) == (EVENT_NAME, UUID(int=11))
    assert (data["budget"], data["threshold"], data["reclaimed"]) == ("daily", 0.25, True)


@pytest.mark.asyncio
async def test_async_calls_report_reclaimed_crossings_too(
    tmp_path: Path,
    fake_provider: FakeProvider,
    store: BudgetStore,
    quiet: list[warnings.WarningMessage],
) -> None:
    s = Setup(tmp_path, fake_provider, store, "0.5")
    s.dead_reservations(3)
    with pytest.raises(BudgetExceeded):
        await policyroute.acompletion(policy=s.policy, messages=MESSAGES, accounting=s.acct)
    assert [(e.threshold, e.reclaimed) for e in s.events] == [(0.5, True)]


def test_a_downgraded_call_that_reclaims_reports_the_crossing(
    store: BudgetStore, quiet: list[warnings.WarningMessage]
) -> None:
    # $0.001 reserved per call (100 tokens in, max_tokens 900 out, at $1/M each way).
    daily = budget(limit="0.0015", warn_at=[0.5], on_exceed=OnExceed("downgrade", "cheap"))
    pol = policy([daily])
    window = window_for(daily.window, NOW)
    held = ReservedLine(daily, "*", window, line_key(daily.name, "*", window.key))
    dead = [held.reserve_line(D("0.001"))]
    assert store.reserve(dead, reservation_id="dead", lease_seconds=DEAD_LEASE, now=NOW).ok
    clock = Clock()
    clock.now += DEAD_LEASE + 1
    guard = BudgetGuard(pol, store, clock=clock, token_counter=fixed_counter(100))  # type: ignore[arg-type]
    events: list[ThresholdEvent] = []
    acct = PolicyAccounting(pol, guard=guard, sinks=[], on_threshold=events.append)  # type: ignore[arg-type]

    admission = acct.admit(attempt([daily], params={"max_tokens": 900}))

    assert admission.downgrade_to == "cheap"
    assert [(e.budget, e.threshold, e.reclaimed) for e in events] == [(daily.name, 0.5, True)]


def _dead(store: BudgetStore, spec: Any, amount: str, now: float = NOW) -> None:
    window = window_for(spec.window, now)
    held = ReservedLine(spec, "*", window, line_key(spec.name, "*", window.key))
    lines = [held.reserve_line(D(amount))]
    assert store.reserve(lines, reservation_id="dead", lease_seconds=DEAD_LEASE, now=now).ok


def _guard_after_lease(store: BudgetStore, *budgets: Any) -> BudgetGuard:
    clock = Clock()
    clock.now += DEAD_LEASE + 1
    return BudgetGuard(policy(budgets), store, clock=clock, token_counter=fixed_counter(100))  # type: ignore[arg-type]


def test_a_clamped_admission_carries_what_its_refused_first_try_reclaimed(
    store: BudgetStore,
) -> None:
    # $0.001 worst case at max_tokens 900; $0.0012 of $0.002 held by the dead reservation.
    clamp = OnExceed("clamp_max_tokens", min_tokens=10)
    daily = budget(limit="0.002", warn_at=[0.5], on_exceed=clamp)
    _dead(store, daily, "0.0012")
    guard = _guard_after_lease(store, daily)

    admission = guard.admit(attempt([daily], params={"max_tokens": 900}))

    assert admission.params["max_tokens"] < 900
    own, reclaimed = guard.settle(admission, D("0.0001"))
    assert (own.reclaimed, own.thresholds_crossed) == (False, ())
    assert (reclaimed.reclaimed, reclaimed.thresholds_crossed) == (True, (0.5,))
    assert reclaimed.spent_after == D("0.0012")
    # Settling again changes nothing and reports nothing again.
    assert guard.settle(admission, D("0.0001")) == ()


def test_a_refusal_carries_the_reclaimed_crossings_on_the_exception(store: BudgetStore) -> None:
    daily = budget(limit="0.0015", warn_at=[0.5])
    other = budget("other", limit="1")
    _dead(store, daily, "0.001")
    guard = _guard_after_lease(store, daily, other)

    with pytest.raises(BudgetExceeded) as refused:
        guard.admit(attempt([other, daily], params={"max_tokens": 900}))

    (charge,) = refused.value.reclaimed  # type: ignore[attr-defined]
    assert (charge.budget, charge.scope, charge.limit) == ("b", "*", D("0.0015"))
    assert (charge.spent_after, charge.thresholds_crossed, charge.reclaimed) == (
        D("0.001"),
        (0.5,),
        True,
    )


def test_a_refusal_that_reclaimed_nothing_carries_an_empty_tuple(store: BudgetStore) -> None:
    daily = budget(limit="0.0005")
    guard = _guard_after_lease(store, daily)
    with pytest.raises(BudgetExceeded) as refused:
        guard.admit(attempt([daily], params={"max_tokens": 900}))
    assert refused.value.reclaimed == ()  # type: ignore[attr-defined]
