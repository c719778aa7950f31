"""A priced one-model policy with a day budget, served by the fake provider, with real
accounting: PolicyAccounting, a JSONL receipt sink and a BudgetGuard on a MemoryStore, built
here (:func:`billing`) or by policyroute from a policy file (:func:`policy_file`); and checks
of the receipts it writes."""

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
from policyroute.costs.estimate import count_input_tokens
from policyroute.costs.sinks import JsonlSink
from policyroute.execution.executor import Executor
from policyroute.policy.compile import CompiledPolicy
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider

POLICY = """
policyroute: 1
name: {name}
models:
  a:
    model: {model}
    api_base: {base}
    api_key: ${{BILLING_TEST_KEY}}
{price}budgets:
  - name: daily
    limit_usd: 100
    window: day
store: {{backend: memory, lease: {lease}}}
{receipts}routes:
  - name: default
    to: a
defaults:
  max_tokens: 64
  retry: {{attempts: 0}}
{timeouts}"""
MODEL = "openai/a"
INPUT_RATE = Decimal(1000) / 1_000_000
OUTPUT_RATE = Decimal(2000) / 1_000_000
RECEIPTS = "receipts.jsonl"
CLAUDE = "claude-sonnet-4-5-20250929"


def policy_text(
    base: str,
    *,
    model: str = MODEL,
    name: str = "billing",
    lease: str = "300s",
    priced: bool = True,
    receipts: bool = False,
    first_token: str | None = None,
) -> str:
    """Model ``a`` (``model`` at ``base``; priced at INPUT_RATE / OUTPUT_RATE, else at
    litellm's prices) under a $100 day budget, with no retries; ``receipts`` writes them to
    ``receipts.jsonl`` in the working directory."""
    return POLICY.format(
        name=name,
        model=model,
        base=base,
        lease=lease,
        price="    price: {input_per_mtok: 1000, output_per_mtok: 2000}\n" if priced else "",
        receipts=f"receipts: {{sink: jsonl, path: {RECEIPTS}}}\n" if receipts else "",
        timeouts=f"  first_token_timeout: {first_token}\n" if first_token else "",
    )


def policy_file(folder: Path, text: str) -> Path:
    """``text`` written to ``folder/policy.yaml``."""
    path = folder / "policy.yaml"
    path.write_text(text)
    return path


def receipts(folder: Path, kind: str) -> list[dict[str, Any]]:
    """The receipts of ``kind`` (``attempt`` or ``call``) in ``folder/receipts.jsonl``."""
    lines = (folder / RECEIPTS).read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def ok_receipts(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one attempt receipt, which must be ``ok``, and the one call receipt in ``folder``."""
    (attempt,) = receipts(folder, "attempt")
    (call,) = receipts(folder, "call")
    assert attempt["status"] == "ok"
    return attempt, call


def assert_charged(receipt: dict[str, Any], tokens_in: int, tokens_out: int) -> None:
    """``receipt`` bills these tokens at the policy's prices, all spent, none left reserved."""
    cost = tokens_in * INPUT_RATE + tokens_out * OUTPUT_RATE
    assert receipt["provider_billed"] is True
    assert (receipt["input_tokens"], receipt["output_tokens"]) == (tokens_in, tokens_out)
    assert Decimal(receipt["cost"]) == cost.quantize(Decimal("1e-6"))
    (budget,) = receipt["budgets"]
    assert (Decimal(budget["spent"]), Decimal(budget["reserved"])) == (
        Decimal(receipt["cost"]),
        Decimal(0),
    )


def assert_counted_locally(
    folder: Path, model: str, messages: list[dict[str, Any]], text: str
) -> None:
    """One ok attempt charged for ``messages`` and ``text`` as counted locally, and marked
    ``usage_estimated`` on its receipt and its call's."""
    attempt, call = ok_receipts(folder)
    tokens_in = count_input_tokens(model, messages, None)
    assert_charged(attempt, tokens_in, litellm.token_counter(model=model, text=text))
    assert (attempt["usage_estimated"], call["usage_estimated"]) == (True, True)


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
        return receipts(self.receipts_path.parent, kind)

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
    policy: CompiledPolicy = load_policy_text(policy_text(fp.openai_base, lease=lease))
    store = MemoryStore()
    if clock is None:
        guard = BudgetGuard(policy, store)
    else:
        # One clock for the store's leases and the executor's renewals.
        guard = BudgetGuard(policy, store, clock=clock)
        executor_kw["clock"] = clock
    path = tmp_path / RECEIPTS
    sink = JsonlSink(path)
    acct = PolicyAccounting(policy, guard=guard, sinks=[sink])
    executor = Executor(policy, accounting=acct, sleep=lambda s: None, **executor_kw)
    return Billing(executor, acct, store, sink, path)


def priced(messages: list[dict[str, Any]], partial_text: str) -> tuple[int, int, Decimal]:
    """Tokens of the prompt and of the text received, counted locally, and their price."""
    tokens_in = litellm.token_counter(model=MODEL, messages=messages)
    tokens_out = litellm.token_counter(model=MODEL, text=partial_text) if partial_text else 0
    return tokens_in, tokens_out, tokens_in * INPUT_RATE + tokens_out * OUTPUT_RATE


def cached_input_usage(output_tokens: int) -> litellm.Usage:
    """Usage as litellm reads it from Anthropic's ``message_start``: 1500 input tokens (1000
    sent afresh, 200 read from the cache, 300 written to it) and ``output_tokens``."""
    return litellm.Usage(
        prompt_tokens=1500,
        completion_tokens=output_tokens,
        total_tokens=1500 + output_tokens,
        prompt_tokens_details={"cached_tokens": 200, "cache_creation_tokens": 300},
        cache_read_input_tokens=200,
        cache_creation_input_tokens=300,
    )


def claude_price(usage: litellm.Usage) -> Decimal:
    """What litellm charges for ``usage`` on ``CLAUDE``, cache reads and writes included."""
    prompt, completion = litellm.cost_per_token(model=f"anthropic/{CLAUDE}", usage_object=usage)
    return Decimal(repr(prompt + completion))
