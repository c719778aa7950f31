"""With receipts off (``sink: none``), no receipt is built, yet every attempt is priced.

Building a receipt costs tens of microseconds per attempt and call, and without a sink
nothing reads it; the cost in ``response_metadata`` and the budgets' settling do not depend
on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from policyroute import ChatPolicyRoute
from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Fault, Reply, Usage

POLICY = """
policyroute: 1
name: no-sink
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_NO_SINK_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes: [{{name: default, to: a}}]
budgets:
  - {{name: memory-total, limit_usd: 10, window: day}}
store: {{backend: memory}}
receipts: {{sink: none}}
defaults: {{max_tokens: 10, retry: {{attempts: 2, backoff: {{initial: 1ms, max: 1ms}}}}}}
"""
# 7 input tokens at $1/Mtok and 3 output tokens at $2/Mtok.
COST = Decimal("0.000013")


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setenv("PR_NO_SINK_KEY", "sk-no-sink-0123456789")
    with FakeProvider() as fp:
        fp.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
        yield fp


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of the receipts built, in order."""
    import policyroute.accounting_.records as records

    kinds: list[str] = []
    attempt_record, call_record = records.attempt_record, records.call_record

    def counted_attempt(*args: Any, **kwargs: Any) -> dict[str, Any]:
        kinds.append("attempt")
        return attempt_record(*args, **kwargs)

    def counted_call(*args: Any, **kwargs: Any) -> dict[str, Any]:
        kinds.append("call")
        return call_record(*args, **kwargs)

    monkeypatch.setattr(records, "attempt_record", counted_attempt)
    monkeypatch.setattr(records, "call_record", counted_call)
    return kinds


def _spent(accounting: PolicyAccounting) -> Decimal:
    assert accounting.guard is not None
    (line,) = accounting.guard.store.scan("", now=time.time())
    assert line.reserved == 0
    return line.spent


def test_no_receipt_is_built_but_each_attempt_is_priced_and_settled(
    provider: FakeProvider, built: list[str]
) -> None:
    policy = load_policy_text(POLICY.format(base=provider.openai_base))
    accounting = PolicyAccounting.from_policy(policy)
    assert accounting.sinks == ()
    chat = ChatPolicyRoute(policy=policy, accounting=accounting)

    answer = chat.invoke([HumanMessage("hello")])
    assert Decimal(answer.response_metadata["policyroute"]["cost"]) == COST
    provider.script("fake-a", Fault.status(500), Reply(text="again", usage=Usage(7, 3)))
    answer = asyncio.run(chat.ainvoke([HumanMessage("hello")]))
    assert answer.content == "again"
    assert Decimal(answer.response_metadata["policyroute"]["cost"]) == COST
    assert built == []
    assert accounting._tallies == {}
    assert _spent(accounting) == 2 * COST


def test_with_a_sink_each_attempt_and_call_has_its_receipt(
    provider: FakeProvider, built: list[str]
) -> None:
    policy = load_policy_text(POLICY.format(base=provider.openai_base))
    seen: list[dict[str, Any]] = []
    accounting = PolicyAccounting.from_policy(policy, sinks=[CallableSink(seen.append)])
    chat = ChatPolicyRoute(policy=policy, accounting=accounting)
    provider.script("fake-a", Fault.status(500), Reply(text="again", usage=Usage(7, 3)))
    asyncio.run(chat.ainvoke([HumanMessage("hello")]))
    chat.invoke([HumanMessage("hello")])
    assert built == ["attempt", "attempt", "call", "attempt", "call"]
    assert [(r["kind"], r["status"]) for r in seen] == [
        ("attempt", "error"),
        ("attempt", "ok"),
        ("call", "ok"),
        ("attempt", "ok"),
        ("call", "ok"),
    ]
    assert accounting._tallies == {}
