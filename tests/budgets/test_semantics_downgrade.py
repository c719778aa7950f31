"""Downgrades: a call sent to another route is that route's call, budgets and scope included.

The language reference treats a downgrade to a route as moving the call to that route (a
downgrade from a route back to itself through other routes is a cycle, PR113), and one to a
group as keeping the call's route with cheaper models.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import policyroute
from budgets.helpers import fixed_counter
from policyroute.budgets import BudgetGuard, MemoryStore
from policyroute.cli import main as cli_main
from policyroute.errors import BudgetExceeded
from policyroute.execution.hooks import Admission, AttemptInfo, CallInfo
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.loader import load_policy
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply, Usage

NOW = 1_750_000_000.0
MESSAGES = [{"role": "user", "content": "hello"}]

# ``big`` costs $0.02 for 10 input + 10 output tokens, ``small`` $0.00002.
POLICY = """\
policyroute: 1
name: downgrades
models:
  big:
    model: openai/fake-big
    api_base: {base}
    api_key: ${{PR_FAULT_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 1000}}
  small:
    model: openai/fake-small
    api_base: {base}
    api_key: ${{PR_FAULT_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
groups:
  cheap: {{strategy: ordered, models: [small]}}
routes:
  - name: premium
    when: {{metadata.tier: gold}}
    to: big
  - name: economy
    to: small
budgets:
{budgets}
store: {{backend: memory}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults: {{max_tokens: 10}}
"""

ROUTE_BUDGETS = """\
  - name: premium-daily
    limit_usd: 0.001
    window: day
    routes: [premium]
    on_exceed: {downgrade: economy}
  - name: economy-daily
    limit_usd: 0.0000001
    window: day
    routes: [economy]
"""


def _write(tmp_path: Path, budgets: str, base: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=base, budgets=budgets), encoding="utf-8")
    return path


def test_a_call_downgraded_to_a_route_is_held_to_that_routes_budgets(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    small = Reply(text="hi", usage=Usage(prompt=7, completion=3))
    fake_provider.set_default("fake-small", small)
    policy = _write(tmp_path, ROUTE_BUDGETS, fake_provider.openai_base)
    with pytest.raises(BudgetExceeded) as direct:
        policyroute.completion(policy=str(policy), messages=MESSAGES)
    assert direct.value.budget == "economy-daily"
    # Refused by premium-daily and downgraded to economy: economy's budget applies there too.
    with pytest.raises(BudgetExceeded) as downgraded:
        policyroute.completion(policy=str(policy), messages=MESSAGES, metadata={"tier": "gold"})
    assert downgraded.value.budget == "economy-daily"
    assert fake_provider.requests == []


class _Call:
    """One call through a guard, attempt by attempt, following downgrades as the executor does."""

    def __init__(self, policy: CompiledPolicy, guard: BudgetGuard, request: Request) -> None:
        self.policy, self.guard = policy, guard
        self.info = CallInfo(request=request, policy=policy, decision=policy.route(request))
        self.candidates = self.info.decision.candidates

    def admit(self) -> Admission:
        while True:
            attempt = AttemptInfo(
                call=self.info,
                candidate=self.candidates[0],
                params={"max_tokens": 10},
                number=1,
                route=self.info.decision.route,
            )
            admission = self.guard.admit(attempt)
            if admission.downgrade_to is None:
                return admission
            self.candidates = self.policy.candidates_for(admission.downgrade_to, self.info.request)


def _guard(policy: CompiledPolicy) -> BudgetGuard:
    return BudgetGuard(policy, MemoryStore(), clock=lambda: NOW, token_counter=fixed_counter(10))


def test_per_route_scope_follows_a_downgrade_to_a_route(tmp_path: Path) -> None:
    policy = load_policy(
        _write(
            tmp_path,
            """\
  - name: by-route
    per: route
    limit_usd: 0.001
    window: day
    on_exceed: {downgrade: economy}
""",
        )
    )
    guard = _guard(policy)
    admission = _Call(policy, guard, Request(messages=MESSAGES, metadata={"tier": "gold"})).admit()
    (charge,) = guard.settle(admission, Decimal("0.00002"))
    assert (charge.budget, charge.scope) == ("by-route", "economy")


def test_a_downgrade_to_a_group_keeps_the_calls_route_and_its_budgets(tmp_path: Path) -> None:
    policy = load_policy(
        _write(
            tmp_path,
            """\
  - name: premium-daily
    limit_usd: 0.001
    window: day
    routes: [premium]
    on_exceed: {downgrade: cheap}
  - name: economy-daily
    limit_usd: 0.0000001
    window: day
    routes: [economy]
""",
        )
    )
    guard = _guard(policy)
    admission = _Call(policy, guard, Request(messages=MESSAGES, metadata={"tier": "gold"})).admit()
    charges = guard.settle(admission, Decimal("0.00002"))
    assert [c.budget for c in charges] == ["premium-daily"]


ECONOMY_PARAMS_POLICY_BUDGETS = """\
  - name: premium-daily
    limit_usd: 0.001
    window: day
    routes: [premium]
    on_exceed: {downgrade: economy}
"""


def _routes_in(receipts: Path) -> list[tuple[str, str | None]]:
    lines = [json.loads(line) for line in receipts.read_text(encoding="utf-8").splitlines()]
    return [(r["kind"], r["route"]) for r in lines]


def test_a_call_downgraded_to_a_route_is_that_routes_call_in_receipts_answer_and_report(
    tmp_path: Path, fake_provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    """The receipts, the answer's metadata and ``receipts report --by route`` all name the route
    the budget downgraded the call to, and that route's ``params`` are what is sent."""
    fake_provider.set_default("fake-small", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
    text = POLICY.format(base=fake_provider.openai_base, budgets=ECONOMY_PARAMS_POLICY_BUDGETS)
    text = text.replace("  - name: economy\n    to: small\n", _ECONOMY_WITH_PARAMS)
    policy = tmp_path / "policy.yaml"
    policy.write_text(text, encoding="utf-8")

    response = policyroute.completion(
        policy=str(policy), messages=MESSAGES, metadata={"tier": "gold"}
    )

    assert response._hidden_params["policyroute"]["route"] == "economy"
    (sent,) = fake_provider.requests
    assert sent.body["max_tokens"] == 5  # economy's params, not the defaults' 10
    assert sent.body["temperature"] == 0.25
    receipts = tmp_path / "receipts.jsonl"
    assert _routes_in(receipts) == [("attempt", "economy"), ("call", "economy")]
    assert cli_main(["receipts", "report", str(receipts), "--by", "route", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["by"]["route"]) == {"economy"}


def test_a_chat_model_answer_names_the_route_a_budget_downgraded_it_to(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    fake_provider.set_default("fake-small", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
    text = POLICY.format(base=fake_provider.openai_base, budgets=ECONOMY_PARAMS_POLICY_BUDGETS)
    text = text.replace("  - name: economy\n    to: small\n", _ECONOMY_WITH_PARAMS)
    policy = tmp_path / "policy.yaml"
    policy.write_text(text, encoding="utf-8")
    llm = ChatPolicyRoute(policy=str(policy))

    message = llm.invoke("hello", config={"metadata": {"tier": "gold"}})

    assert message.response_metadata["policyroute"]["route"] == "economy"
    assert fake_provider.requests[0].body["max_tokens"] == 5


_ECONOMY_WITH_PARAMS = """\
  - name: economy
    to: small
    params: {max_tokens: 5, temperature: 0.25}
"""
