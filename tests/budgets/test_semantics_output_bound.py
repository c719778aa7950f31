"""The output bound of a worst case is the most the provider can be made to produce.

It follows what is actually sent: the larger of two limits the call gives, and the model's own
limit (not the policy default) when the call names a limit as ``None``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import policyroute
from budgets.helpers import attempt, budget, candidate, fixed_counter, policy
from policyroute.budgets import BudgetGuard, MemoryStore
from policyroute.costs.estimate import output_bound
from policyroute.policy.model import OnExceed
from policyroute.testing import FakeProvider, Reply, Usage

D = Decimal
NOW = 1_750_000_000.0


def _guard(*budgets: object, max_tokens: int | None = None) -> BudgetGuard:
    return BudgetGuard(
        policy(budgets, max_tokens=max_tokens),
        MemoryStore(),
        clock=lambda: NOW,
        token_counter=fixed_counter(100),
    )


def test_the_larger_of_two_output_limits_bounds_the_worst_case() -> None:
    params = {"max_tokens": 100, "max_completion_tokens": 900}
    assert output_bound(params, candidate(), None) == 900
    b = budget(limit="1")
    # 100 input + 900 output tokens at $1/M.
    assert _guard(b).admit(attempt([b], params=params)).estimate == D("0.001")


def test_clamping_lowers_every_output_limit_the_call_gives() -> None:
    b = budget(limit="0.0003", on_exceed=OnExceed(action="clamp_max_tokens"))
    params = {"max_tokens": 900, "max_completion_tokens": 900}
    admission = _guard(b).admit(attempt([b], params=params))
    assert admission.params == {"max_tokens": 199, "max_completion_tokens": 199}


def test_a_limit_given_as_none_is_not_given_the_policy_default_bounds_it() -> None:
    cand = candidate(max_output_tokens=100_000)
    assert output_bound({"max_tokens": None}, cand, 400) == 400
    assert output_bound({"max_tokens": None, "max_completion_tokens": None}, cand, 400) == 400


POLICY = """\
policyroute: 1
name: unbounded
models:
  small:
    model: openai/fake-small
    api_base: {base}
    api_key: ${{PR_FAULT_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
    max_output_tokens: 100000
routes:
  - name: default
    to: small
budgets:
  - name: daily
    limit_usd: 0.01
    window: day
store: {{backend: memory}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults: {{max_tokens: 10}}
"""


def test_a_call_giving_max_tokens_none_is_sent_the_default_the_budget_reserved_for(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    fake_provider.set_default("fake-small", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=fake_provider.openai_base), encoding="utf-8")
    messages = [{"role": "user", "content": "hi"}]
    # The worst case assumed the default 10 tokens; the provider must not be sent less of a
    # limit than that (None reaches it as no limit at all: up to 100000 tokens).
    policyroute.completion(policy=str(path), messages=messages, max_tokens=None)
    assert [r.body.get("max_tokens") for r in fake_provider.requests] == [10]
