"""Budgets hold for calls that offer server-side tools (web search and the like).

The provider bills such tools beyond the tokens a worst case counts: a fee per search, and
what the search finds as input. A call offering them is refused under a budget unless its
model gives ``max_server_tool_cost_usd``, which the worst case then adds for each choice;
calls offering none, and calls no budget covers, are unaffected.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import policyroute
from budgets.helpers import attempt, budget, candidate, fixed_counter, policy
from policyroute.budgets import BudgetGuard, MemoryStore
from policyroute.budgets.clamp import max_tokens_within
from policyroute.errors import BudgetError
from policyroute.explain import explain
from policyroute.policy.loader import load_policy_text
from policyroute.policy.model import OnExceed
from policyroute.testing import FakeProvider, Reply, Usage

D = Decimal
NOW = 1_750_000_000.0
SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
FUNCTION = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
HI = [{"role": "user", "content": "What happened today?"}]


def _guard(*budgets: Any) -> BudgetGuard:
    return BudgetGuard(
        policy(budgets), MemoryStore(), clock=lambda: NOW, token_counter=fixed_counter(100)
    )


def _capped(cap: str = "0.05") -> Any:
    return candidate(max_server_tool_cost_usd=D(cap))


# ------------------------------------------------------------------ the guard


def test_the_worst_case_adds_the_bound_only_when_server_tools_are_offered() -> None:
    b = budget(limit="1")
    guard = _guard(b)
    cand = _capped()
    # 100 input + 900 output tokens at $1/M: $0.001, as before for a call with no server tool.
    plain = guard.admit(attempt([b], cand=cand, params={"max_tokens": 900, "tools": [FUNCTION]}))
    assert plain.estimate == D("0.001")
    searching = {"max_tokens": 900, "tools": [FUNCTION, SEARCH]}
    assert guard.admit(attempt([b], cand=cand, params=searching)).estimate == D("0.051")
    options = {"max_tokens": 900, "web_search_options": {"search_context_size": "low"}}
    assert guard.admit(attempt([b], cand=cand, params=options)).estimate == D("0.051")


def test_the_bound_is_added_for_each_choice() -> None:
    b = budget(limit="1")
    params = {"max_tokens": 900, "n": 2, "tools": [SEARCH]}
    assert _guard(b).admit(attempt([b], cand=_capped(), params=params)).estimate == D("0.102")


def test_without_a_bound_the_call_is_refused_naming_the_model_and_the_field() -> None:
    b = budget(name="daily", limit="1")
    params = {"max_tokens": 900, "tools": [SEARCH]}
    with pytest.raises(BudgetError) as caught:
        _guard(b).admit(attempt([b], cand=candidate("searcher"), params=params))
    message = str(caught.value)
    assert "'daily'" in message
    assert "model 'searcher'" in message
    assert "web_search_20250305" in message
    assert "max_server_tool_cost_usd" in message


def test_a_missing_price_and_server_tools_are_both_named() -> None:
    b = budget(limit="1")
    unpriced = candidate("local", "custom/unpriced-model", price=None)
    with pytest.raises(BudgetError) as caught:
        _guard(b).admit(attempt([b], cand=unpriced, params={"max_tokens": 9, "tools": [SEARCH]}))
    message = str(caught.value)
    assert "no known price" in message
    assert "server-side tools (web_search_20250305)" in message
    assert "`price:`" in message
    assert "max_server_tool_cost_usd" in message


def test_clamping_keeps_room_for_the_server_tools() -> None:
    # $0.0503 leaves $0.0002 once the input ($0.0001) and the search bound ($0.05) are paid:
    # 199 output tokens, not the 900 asked for.
    b = budget(limit="0.0503", on_exceed=OnExceed(action="clamp_max_tokens"))
    params = {"max_tokens": 900, "tools": [SEARCH]}
    admission = _guard(b).admit(attempt([b], cand=_capped(), params=params))
    assert admission.params["max_tokens"] == 199
    assert admission.estimate == D("0.0503") - D("0.000001")


def test_no_output_fits_when_the_server_tools_take_the_budget() -> None:
    from policyroute.costs.estimate import Estimate

    est = Estimate(
        100,
        900,
        D("0.051"),
        True,
        input_rate=D("1e-6"),
        output_rate=D("1e-6"),
        server_tools=("web_search",),
        server_tool_cost=D("0.05"),
    )
    assert max_tokens_within(est, D("0.0500")) is None


# ------------------------------------------------------------------ at the call

POLICY = """\
policyroute: 1
name: search
models:
  claude:
    model: anthropic/claude-haiku-4-5
    api_base: {anthropic}
    api_key: ${{PR_FAULT_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
{cap}
  mini:
    model: openai/fake-a
    api_base: {openai}
    api_key: ${{PR_FAULT_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
routes:
  - name: free
    when: {{metadata.tier: free}}
    to: claude
  - name: openai
    when: {{metadata.tier: openai}}
    to: mini
  - name: default
    to: claude
budgets:
  - name: daily
    limit_usd: 1
    window: day
    routes: [default, openai]
store: {{backend: memory}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults: {{max_tokens: 100}}
"""
CAP = "    max_server_tool_cost_usd: 0.05"


def _policy(tmp_path: Path, fp: FakeProvider, cap: str = "") -> Path:
    path = tmp_path / "policy.yaml"
    text = POLICY.format(anthropic=fp.anthropic_base, openai=fp.openai_base, cap=cap)
    path.write_text(text, encoding="utf-8")
    fp.set_default("claude-haiku-4-5", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
    return path


def _estimated(tmp_path: Path) -> list[Decimal | None]:
    """Each attempt's reservation, from its receipt (``None``: no budget reserved for it)."""
    lines = (tmp_path / "receipts.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    return [
        None if r["estimated_cost"] is None else D(r["estimated_cost"])
        for r in records
        if r["kind"] == "attempt"
    ]


def _usual(path: Path, tools: list[dict[str, Any]]) -> Decimal:
    """The worst case of a call of ``HI`` with ``tools`` as tokens alone, at $1/M both ways."""
    (line,) = explain(policyroute.load_policy(path), {"messages": HI, "tools": tools}).candidates
    assert line.output_tokens == 100
    return D(line.input_tokens + line.output_tokens) / 1_000_000


def test_completion_offering_a_search_is_refused_before_anything_is_sent(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    path = _policy(tmp_path, fake_provider)
    # Calls offering no server tool, and calls no budget covers (route "free"), are unchanged.
    policyroute.completion(policy=str(path), messages=HI, tools=[FUNCTION])
    policyroute.completion(policy=str(path), messages=HI, metadata={"tier": "free"}, tools=[SEARCH])
    assert len(fake_provider.requests) == 2
    assert _estimated(tmp_path) == [_usual(path, [FUNCTION]), None]

    with pytest.raises(BudgetError, match=r"model 'claude'.*max_server_tool_cost_usd"):
        policyroute.completion(policy=str(path), messages=HI, tools=[SEARCH])
    with pytest.raises(BudgetError, match=r"model 'mini'.*max_server_tool_cost_usd"):
        policyroute.completion(
            policy=str(path),
            messages=HI,
            metadata={"tier": "openai"},
            web_search_options={"search_context_size": "low"},
        )
    assert len(fake_provider.requests) == 2  # nothing more was sent


def test_completion_with_the_bound_reserves_the_usual_worst_case_plus_the_bound(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    path = _policy(tmp_path, fake_provider, CAP)
    policyroute.completion(policy=str(path), messages=HI, tools=[SEARCH])
    (sent,) = fake_provider.requests
    assert sent.body["tools"] == [SEARCH]
    assert _estimated(tmp_path) == [_usual(path, [SEARCH]) + D("0.05")]


def test_chat_model_bound_to_a_server_tool_is_refused_then_admitted_with_the_bound(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    from policyroute import ChatPolicyRoute

    path = _policy(tmp_path, fake_provider)
    searching = ChatPolicyRoute(policy=str(path)).bind_tools([SEARCH])
    with pytest.raises(BudgetError, match=r"model 'claude'.*max_server_tool_cost_usd"):
        searching.invoke(HI)
    assert fake_provider.requests == []

    path = _policy(tmp_path, fake_provider, CAP)
    answer = ChatPolicyRoute(policy=str(path)).bind_tools([SEARCH]).invoke(HI)
    assert answer.content == "hi"
    (sent,) = fake_provider.requests
    assert sent.body["tools"] == [SEARCH]
    assert _estimated(tmp_path) == [_usual(path, [SEARCH]) + D("0.05")]


# ------------------------------------------------------------------ the policy


def test_the_bound_is_read_as_an_exact_decimal() -> None:
    text = (
        "policyroute: 1\nname: t\nmodels:\n"
        "  m: {model: openai/gpt-4o-mini, max_server_tool_cost_usd: 0.1000000000000000055511}\n"
        "  n: {model: openai/gpt-4o-mini}\n"
        "routes: [{name: d, to: [m, n]}]\n"
    )
    models = load_policy_text(text).spec.models
    assert models["m"].max_server_tool_cost_usd == D("0.1000000000000000055511")
    assert models["n"].max_server_tool_cost_usd is None


def test_both_copies_of_the_schema_describe_the_bound_as_money() -> None:
    root = Path(__file__).resolve().parents[2]
    published = (root / "schemas" / "policy.schema.json").read_text(encoding="utf-8")
    shipped = (root / "policyroute" / "schema" / "policy.schema.json").read_text(encoding="utf-8")
    assert published == shipped
    field = json.loads(published)["$defs"]["Model"]["properties"]["max_server_tool_cost_usd"]
    assert field["$ref"] == "#/$defs/Money"
