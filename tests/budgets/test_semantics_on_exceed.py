"""on_exceed: which budget's action applies, how far a clamp goes, what a refusal reports."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import policyroute
from budgets.helpers import attempt, budget, candidate, fixed_counter, policy
from policyroute.budgets import BudgetGuard, MemoryStore
from policyroute.errors import BudgetExceeded
from policyroute.policy.model import BudgetSpec, OnExceed, WindowSpec
from policyroute.routing.decision import Candidate
from policyroute.testing import FakeProvider

D = Decimal
NOW = 1_750_000_000.0
# 100 input tokens + max_tokens 900 at $1/M each way: $0.001 per call.
PARAMS = {"max_tokens": 900}
CLAMP = OnExceed(action="clamp_max_tokens", min_tokens=50)


def _guard(*budgets: BudgetSpec) -> BudgetGuard:
    return BudgetGuard(
        policy(budgets), MemoryStore(), clock=lambda: NOW, token_counter=fixed_counter(100)
    )


@pytest.mark.parametrize("clamp_first", [True, False])
def test_a_blocking_budget_refuses_whatever_the_budget_order(clamp_first: bool) -> None:
    clamps = budget("clamps", limit="0.0006", on_exceed=CLAMP)
    blocks = budget("blocks", limit="0.0007")
    order = (clamps, blocks) if clamp_first else (blocks, clamps)
    with pytest.raises(BudgetExceeded) as info:
        _guard(*order).admit(attempt(order, params=PARAMS))
    assert (info.value.budget, info.value.estimate) == ("blocks", D("0.001"))


DOWNGRADE = OnExceed(action="downgrade", target="cheap")


@pytest.mark.parametrize("downgrade_first", [True, False])
def test_a_blocking_budget_refuses_rather_than_a_downgrade_whatever_the_order(
    downgrade_first: bool,
) -> None:
    downgrades = budget("downgrades", limit="0.0005", on_exceed=DOWNGRADE)
    blocks = budget("blocks", limit="0.0006")
    order = (downgrades, blocks) if downgrade_first else (blocks, downgrades)
    with pytest.raises(BudgetExceeded) as info:
        _guard(*order).admit(attempt(order, params=PARAMS))
    assert info.value.budget == "blocks"


@pytest.mark.parametrize("clamp_first", [True, False])
@pytest.mark.parametrize("downgrade_limit", ["0.00005", "0.0008"])
def test_a_downgrade_applies_before_a_clamp_whatever_the_order(
    clamp_first: bool, downgrade_limit: str
) -> None:
    # The downgrade budget leaves no room for the input (no clamp could fit it) or room that a
    # clamp to 499 tokens would fit: the call is downgraded, unclamped, either way.
    clamps = budget("clamps", limit="0.0006", on_exceed=CLAMP)
    downgrades = budget("downgrades", limit=downgrade_limit, on_exceed=DOWNGRADE)
    order = (clamps, downgrades) if clamp_first else (downgrades, clamps)
    admission = _guard(*order).admit(attempt(order, params=PARAMS))
    assert (admission.downgrade_to, admission.params) == ("cheap", PARAMS)


def test_a_clamp_still_applies_when_the_downgrade_budget_is_not_broken() -> None:
    clamps = budget("clamps", limit="0.0006", on_exceed=CLAMP)
    downgrades = budget("downgrades", limit="1", on_exceed=DOWNGRADE)
    admission = _guard(clamps, downgrades).admit(attempt([clamps, downgrades], params=PARAMS))
    assert (admission.downgrade_to, admission.params["max_tokens"]) == (None, 499)


def test_a_clamp_still_fits_a_blocking_budget_that_the_call_does_not_break() -> None:
    clamps = budget("clamps", limit="0.0006", on_exceed=CLAMP)
    blocks = budget("blocks", limit="1")
    admission = _guard(clamps, blocks).admit(attempt([clamps, blocks], params=PARAMS))
    assert admission.params["max_tokens"] == 499


def test_a_clamp_divides_the_room_among_n_choices() -> None:
    b = budget(limit="0.0012", on_exceed=CLAMP)
    admission = _guard(b).admit(attempt([b], params={**PARAMS, "n": 2}))
    # $0.0012 / 2 choices - 100 input tokens = room for 499 output tokens each.
    assert admission.params == {"max_tokens": 499, "n": 2}
    assert admission.estimate == D("0.001198")


def test_a_clamp_below_its_floor_refuses_with_the_unclamped_estimate() -> None:
    b = budget(limit="0.00012", on_exceed=CLAMP)
    with pytest.raises(BudgetExceeded, match="cannot be clamped to 50") as info:
        _guard(b).admit(attempt([b], params=PARAMS))
    assert (info.value.limit, info.value.estimate) == (D("0.00012"), D("0.001"))


def test_a_refusal_reports_the_refusing_line_spend_reservations_and_estimate() -> None:
    b = budget("team", limit="0.0025", per="metadata.team")
    g = _guard(b)
    g.settle(g.admit(attempt([b], params=PARAMS, metadata={"team": "red"})), D("0.0007"))
    g.admit(attempt([b], params=PARAMS, metadata={"team": "red"}))  # held, not settled
    g.admit(attempt([b], params=PARAMS, metadata={"team": "blue"}))
    with pytest.raises(BudgetExceeded) as info:
        g.admit(attempt([b], params={"max_tokens": 1000}, metadata={"team": "red"}))
    exc = info.value
    assert (exc.budget, exc.scope, exc.limit, exc.spent, exc.reserved, exc.estimate) == (
        "team",
        "red",
        D("0.0025"),
        D("0.0007"),
        D("0.001"),
        D("0.0011"),
    )
    assert exc.window == "day:2025-06-15"


def test_a_call_window_refusal_reports_no_spend_and_the_calls_estimate() -> None:
    b = budget("per-call", limit="0.0005", window=WindowSpec(kind="call"))
    with pytest.raises(BudgetExceeded) as info:
        _guard(b).admit(attempt([b], params=PARAMS))
    exc = info.value
    assert (exc.scope, exc.spent, exc.reserved, exc.estimate, exc.window) == (
        "*",
        D(0),
        D(0),
        D("0.001"),
        "call",
    )


THINKING = {"type": "enabled", "budget_tokens": 2048}


def test_a_clamp_keeps_the_thinking_budget_below_max_tokens() -> None:
    # $0.0022 - 100 input tokens = room for 2099 output tokens; thinking must stay below.
    b = budget(limit="0.0022", on_exceed=CLAMP)
    params = {"max_tokens": 4096, "thinking": THINKING}
    admission = _guard(b).admit(attempt([b], params=params))
    assert admission.params["max_tokens"] == 2099
    assert admission.params["thinking"] == THINKING
    tighter = budget(limit="0.0015", on_exceed=CLAMP)
    admission = _guard(tighter).admit(attempt([tighter], params=params))
    assert admission.params["max_tokens"] == 1399
    assert admission.params["thinking"] == {"type": "enabled", "budget_tokens": 1398}


def test_a_clamp_that_leaves_no_room_for_thinking_refuses() -> None:
    b = budget(limit="0.001", on_exceed=CLAMP)
    with pytest.raises(BudgetExceeded, match="thinking"):
        _guard(b).admit(attempt([b], params={"max_tokens": 4096, "thinking": THINKING}))


CLAUDE = candidate("claude", "anthropic/claude-sonnet-4-5-20250929")


@pytest.mark.parametrize("effort", ["high", {"effort": "high", "summary": "concise"}])
def test_a_clamp_writes_out_and_lowers_the_thinking_a_reasoning_effort_asks_for(
    effort: object,
) -> None:
    # litellm makes reasoning_effort "high" a thinking budget of 4096 tokens on Claude, which
    # Anthropic refuses under a max_tokens of 2099: the clamp sends the thinking it can afford.
    b = budget(limit="0.0022", on_exceed=CLAMP)
    params = {"max_tokens": 4096, "reasoning_effort": effort}
    admission = _guard(b).admit(attempt([b], cand=CLAUDE, params=params))
    assert admission.params == {
        "max_tokens": 2099,
        "thinking": {"type": "enabled", "budget_tokens": 2098},
    }


@pytest.mark.parametrize(
    ("cand", "effort"),
    [
        (CLAUDE, "low"),  # 1024 tokens of thinking fit under 2099
        (candidate("opus", "anthropic/claude-opus-4-6"), "high"),  # adaptive: no budget
        (candidate("gpt", "openai/o3-mini"), "high"),  # OpenAI's effort bounds nothing
    ],
)
def test_a_clamp_keeps_a_reasoning_effort_whose_thinking_fits(cand: Candidate, effort: str) -> None:
    b = budget(limit="0.0022", on_exceed=CLAMP)
    params = {"max_tokens": 4096, "reasoning_effort": effort}
    admission = _guard(b).admit(attempt([b], cand=cand, params=params))
    assert admission.params == {"max_tokens": 2099, "reasoning_effort": effort}


def test_a_clamp_that_leaves_no_room_for_a_reasoning_efforts_thinking_refuses() -> None:
    b = budget(limit="0.001", on_exceed=CLAMP)
    params = {"max_tokens": 4096, "reasoning_effort": "medium"}
    with pytest.raises(BudgetExceeded, match="thinking"):
        _guard(b).admit(attempt([b], cand=CLAUDE, params=params))


CLAUDE_POLICY = """\
policyroute: 1
name: clamped-effort
models:
  claude:
    model: anthropic/claude-sonnet-4-5-20250929
    api_base: {base}
    api_key: ${{PR_FAULT_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
routes:
  - name: default
    to: claude
budgets:
  - name: per-call
    limit_usd: 0.003
    window: call
    on_exceed: {{clamp_max_tokens: {{min_tokens: 100}}}}
store: {{backend: memory}}
receipts: {{sink: none}}
"""


def test_a_clamped_call_with_a_reasoning_effort_sends_thinking_below_max_tokens(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(CLAUDE_POLICY.format(base=fake_provider.anthropic_base), encoding="utf-8")
    policyroute.completion(
        policy=str(policy), messages=[{"role": "user", "content": "hi"}], reasoning_effort="high"
    )
    (sent,) = fake_provider.requests
    assert sent.body["max_tokens"] < 4096
    assert sent.body["thinking"] == {
        "type": "enabled",
        "budget_tokens": sent.body["max_tokens"] - 1,
    }
