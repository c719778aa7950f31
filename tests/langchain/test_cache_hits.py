"""An answer from LangChain's LLM cache is a cache hit, not a second spend: its policyroute
entry reports cost 0 and no attempts, says ``cache_hit``, and keeps the paid call's entry under
``original_call``; no receipt is written for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Annotated, Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import set_llm_cache
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from lc_support import policy_text
from typing_extensions import TypedDict

from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.costs.sinks import CallableSink
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Reply, Usage


@pytest.fixture
def global_cache() -> Iterator[InMemoryCache]:
    cache = InMemoryCache()
    set_llm_cache(cache)
    try:
        yield cache
    finally:
        set_llm_cache(None)


def _model(fp: FakeProvider, **kwargs: Any) -> tuple[ChatPolicyRoute, list[Mapping[str, Any]]]:
    """A model on the fake provider whose call receipts are gathered in the returned list."""
    policy = load_policy_text(policy_text(fp.openai_base))
    receipts: list[Mapping[str, Any]] = []
    accounting = PolicyAccounting(
        policy, guard=BudgetGuard(policy, MemoryStore()), sinks=[CallableSink(receipts.append)]
    )
    return ChatPolicyRoute(policy=policy, accounting=accounting, **kwargs), receipts


def _calls(receipts: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in receipts if r.get("kind") == "call"]


def _cost(message: AIMessage) -> Decimal:
    return Decimal(message.response_metadata["policyroute"]["cost"])


@pytest.mark.parametrize("how", ["invoke", "ainvoke", "streaming"])
def test_a_cache_hit_reports_no_cost_and_keeps_the_paid_calls_facts(
    fp: FakeProvider, global_cache: InMemoryCache, how: str
) -> None:
    fp.set_default("fake-fast", Reply(text="four", usage=Usage(prompt=1000, completion=500)))
    llm, receipts = _model(fp, streaming=how == "streaming")

    def call() -> AIMessage:
        if how == "ainvoke":
            return asyncio.run(llm.ainvoke("2+2?"))
        return llm.invoke("2+2?")

    paid, hit = call(), call()
    assert len(fp.requests) == 1
    assert len(_calls(receipts)) == 1  # nothing was spent for the hit: no receipt
    original = paid.response_metadata["policyroute"]
    assert _cost(paid) == Decimal("0.002")
    assert "cache_hit" not in original
    entry = hit.response_metadata["policyroute"]
    assert entry["cache_hit"] is True
    assert (entry["cost"], entry["attempts"], entry["request_id"]) == ("0", [], None)
    assert (entry["route"], entry["deployment"]) == ("default", "fast")
    assert entry["original_call"] == original
    assert entry["original_call"]["request_id"] == _calls(receipts)[0]["request_id"]
    # Summing cost over the answers counts the one paid call once.
    assert _cost(paid) + _cost(hit) == Decimal(_calls(receipts)[0]["cost"])
    # LangChain's own mark of a hit, beside policyroute's.
    assert hit.usage_metadata is not None
    assert hit.usage_metadata.get("total_cost") == 0
    # The paid answer, which the in-memory cache holds, is left as it was.
    assert "cache_hit" not in paid.response_metadata["policyroute"]
    again = call()
    assert again.response_metadata["policyroute"] == entry


def test_a_cache_on_the_model_marks_its_hits(fp: FakeProvider) -> None:
    llm, receipts = _model(fp, cache=InMemoryCache())
    paid = llm.invoke("hi")
    hit = llm.invoke("hi")
    assert len(fp.requests) == len(_calls(receipts)) == 1
    assert "cache_hit" not in paid.response_metadata["policyroute"]
    assert hit.response_metadata["policyroute"]["cache_hit"] is True
    assert _cost(hit) == 0


class _State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def test_an_agents_cost_counts_a_cached_answer_once(
    fp: FakeProvider, global_cache: InMemoryCache
) -> None:
    fp.set_default("fake-fast", Reply(text="four", usage=Usage(prompt=1000, completion=500)))
    llm, receipts = _model(fp)

    def agent(state: _State) -> dict[str, Any]:
        return {"messages": [llm.invoke(state["messages"])]}

    builder = StateGraph(_State)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    graph = builder.compile()
    answers: list[AIMessage] = []
    for _ in range(3):  # three runs asking the same thing: one paid, two from the cache
        out = graph.invoke({"messages": [HumanMessage("2+2?")]})
        answers += [m for m in out["messages"] if isinstance(m, AIMessage)]
    assert len(answers) == 3
    assert len(fp.requests) == 1
    spent = sum((_cost(m) for m in answers), Decimal(0))
    assert spent == sum((Decimal(r["cost"]) for r in _calls(receipts)), Decimal(0))
    assert [m.response_metadata["policyroute"].get("cache_hit", False) for m in answers] == [
        False,
        True,
        True,
    ]
