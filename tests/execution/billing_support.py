"""A priced policy with a day budget, served by the fake provider, with real accounting:
PolicyAccounting, a JSONL receipt sink and a BudgetGuard on a MemoryStore."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("BILLING_TEST_KEY", "sk-test")

import litellm

from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.base import LineState
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.costs.sinks import JsonlSink
from policyroute.execution.executor import Executor
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider

POLICY = """
policyroute: 1
name: billing
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
budgets:
  - name: daily
    limit_usd: 100
    window: day
store: {{backend: memory, lease: {lease}}}
routes:
  - name: default
    to: a
defaults:
  max_tokens: 64
  retry: {{attempts: 0}}
"""
MODEL = "openai/a"
INPUT_RATE = Decimal(1000) / 1_000_000
OUTPUT_RATE = Decimal(2000) / 1_000_000


@dataclass
class Billing:
    """An executor with real accounting, and where to read what it charged."""

    executor: Executor
    accounting: PolicyAccounting
    store: MemoryStore
    sink: JsonlSink
    receipts_path: Path

    def receipts(self, kind: str) -> list[dict[str, Any]]:
        self.sink.close()
        lines = self.receipts_path.read_text().splitlines()
        return [r for r in map(json.loads, lines) if r["kind"] == kind]

    def budget(self, now: float) -> LineState:
        (state,) = self.store.scan("daily/", now=now)
        return state


def billing(
    fp: FakeProvider,
    tmp_path: Path,
    *,
    lease: str = "300s",
    clock: Any = None,
    **executor_kw: Any,
) -> Billing:
    policy: CompiledPolicy = load_policy_text(POLICY.format(base=fp.openai_base, lease=lease))
    store = MemoryStore()
    if clock is None:
        guard = BudgetGuard(policy, store)
    else:
        # One clock for the store's leases and the executor's renewals.
        guard = BudgetGuard(policy, store, clock=clock)
        executor_kw["clock"] = clock
    path = tmp_path / "receipts.jsonl"
    sink = JsonlSink(path)
    acct = PolicyAccounting(policy, guard=guard, sinks=[sink])
    executor = Executor(policy, accounting=acct, sleep=lambda s: None, **executor_kw)
    return Billing(executor, acct, store, sink, path)


def priced(messages: list[dict[str, Any]], partial_text: str) -> tuple[int, int, Decimal]:
    """Tokens of the prompt and of the text received, counted locally, and their price."""
    tokens_in = litellm.token_counter(model=MODEL, messages=messages)
    tokens_out = litellm.token_counter(model=MODEL, text=partial_text) if partial_text else 0
    return tokens_in, tokens_out, tokens_in * INPUT_RATE + tokens_out * OUTPUT_RATE
