"""A LangGraph node calling ChatPolicyRoute, under LangGraph's RetryPolicy: failures a retry
cannot fix (a budget refusal, a request the provider refuses, refused credentials, no route)
run the node once; transient ones are retried. ``policyroute.retryable`` also sees through an
AllCandidatesFailedError whose every candidate refused the request, and the default RetryPolicy
leaves alone the AllCandidatesRefusedError raised then."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import RetryPolicy
from typing_extensions import TypedDict

import policyroute
from policyroute.accounting import PolicyAccounting
from policyroute.budgets.guard import BudgetGuard
from policyroute.budgets.stores.memory import MemoryStore
from policyroute.errors import (
    AllCandidatesFailedError,
    AllCandidatesRefusedError,
    AuthenticationError,
    BadRequestError,
    BudgetExceeded,
    ContentPolicyError,
    ContextWindowExceededError,
    NoCandidateError,
    NotFoundError,
    PolicyRouteError,
    PolicyValidationError,
    RequestError,
)
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider, Fault, Reply

# Fast intervals; ``retry_on`` stays LangGraph's default.
QUICK = {"initial_interval": 0.001, "max_interval": 0.002, "jitter": False}


def _policy(base: str, *, fallback_on: str, tools: bool = True, budget: str = "") -> str:
    """Two deployments on one route; ``fallback_on`` decides which failures move on."""
    models = "".join(
        f"""
  {alias}:
    model: openai/fake-{alias}
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
    context_window: 128000
    max_output_tokens: 4096
    capabilities: {{tools: {str(tools).lower()}}}"""
        for alias in ("one", "two")
    )
    return f"""policyroute: 1
name: graph-retries
models:{models}
routes:
  - name: main
    to: [one, two]
defaults:
  retry: {{attempts: 0, fallback_on: [{fallback_on}]}}
  max_tokens: 100
receipts: {{sink: none}}
{budget}"""


class _State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _graph(llm: ChatPolicyRoute, policy: RetryPolicy, runs: list[int], **call: Any) -> Any:
    def agent(state: _State) -> dict[str, Any]:
        runs.append(1)
        return {"messages": [llm.invoke(state["messages"], **call)]}

    builder = StateGraph(_State)
    builder.add_node("agent", agent, retry_policy=policy)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile()


def _model(text: str) -> ChatPolicyRoute:
    policy = load_policy_text(text)
    accounting = PolicyAccounting(policy, guard=BudgetGuard(policy, MemoryStore()), sinks=[])
    return ChatPolicyRoute(policy=policy, accounting=accounting)


def _run(llm: ChatPolicyRoute, policy: RetryPolicy, **call: Any) -> tuple[Exception, int]:
    runs: list[int] = []
    graph = _graph(llm, policy, runs, **call)
    with pytest.raises(PolicyRouteError) as caught:
        graph.invoke({"messages": [HumanMessage("hi")]})
    return caught.value, len(runs)


NO_FALLBACK = "rate_limit, server_error"
BUDGET = """budgets:
  - {name: tiny, limit_usd: 0.000001, window: day, on_exceed: block}
"""

WEATHER = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
}

# (what fails, the fault both deployments answer with, the error raised, requests sent)
REFUSALS: list[tuple[str, Callable[[], Any] | None, type[Exception], int]] = [
    ("bad_request", Fault.bad_request, BadRequestError, 1),
    ("context_window", Fault.context_length, ContextWindowExceededError, 1),
    ("content_policy", Fault.content_filter, ContentPolicyError, 1),
    ("authentication", lambda: Fault.status(401), AuthenticationError, 1),
    ("not_found", lambda: Fault.status(404), NotFoundError, 1),
    ("budget", None, BudgetExceeded, 0),
]


@pytest.mark.parametrize(
    ("case", "fault", "raised", "sent"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_the_default_retry_policy_runs_a_node_once_for_what_a_retry_cannot_fix(
    fp: FakeProvider,
    case: str,
    fault: Callable[[], Any] | None,
    raised: type[Exception],
    sent: int,
) -> None:
    if fault is not None:
        fp.set_default("fake-one", fault())
    llm = _model(
        _policy(fp.openai_base, fallback_on=NO_FALLBACK, budget=BUDGET if fault is None else "")
    )
    error, runs = _run(llm, RetryPolicy(**QUICK))
    assert type(error) is raised
    assert runs == 1
    assert len(fp.requests) == sent
    assert not policyroute.retryable(error)


def test_a_malformed_request_a_broken_policy_and_no_candidate_run_the_node_once(
    fp: FakeProvider,
) -> None:
    llm = _model(_policy(fp.openai_base, fallback_on=NO_FALLBACK))
    error, runs = _run(llm, RetryPolicy(**QUICK), max_tokens=-5)
    assert (type(error), runs) == (RequestError, 1)
    # No deployment of the route takes tools: every candidate is filtered out.
    llm = _model(_policy(fp.openai_base, fallback_on=NO_FALLBACK, tools=False))
    error, runs = _run(llm, RetryPolicy(**QUICK), tools=[WEATHER])
    assert (type(error), runs) == (NoCandidateError, 1)
    assert not fp.requests
    built: list[int] = []

    def agent(state: _State) -> dict[str, Any]:
        built.append(1)
        broken = _policy(fp.openai_base, fallback_on="no_such_class")
        return {"messages": [ChatPolicyRoute(policy=broken).invoke(state["messages"])]}

    builder = StateGraph(_State)
    builder.add_node("agent", agent, retry_policy=RetryPolicy(**QUICK))
    builder.add_edge(START, "agent")
    with pytest.raises(PolicyValidationError):
        builder.compile().invoke({"messages": [HumanMessage("hi")]})
    assert built == [1]


def test_a_transient_failure_of_every_candidate_is_retried(fp: FakeProvider) -> None:
    fp.set_default("fake-one", Fault.status(503))
    fp.set_default("fake-two", Fault.status(503))
    llm = _model(_policy(fp.openai_base, fallback_on=NO_FALLBACK))
    for retry_on in ({}, {"retry_on": policyroute.retryable}):
        error, runs = _run(llm, RetryPolicy(max_attempts=3, **QUICK, **retry_on))
        assert isinstance(error, AllCandidatesFailedError)
        assert runs == 3


@pytest.mark.parametrize(
    "fault", [Fault.context_length, Fault.content_filter, lambda: Fault.status(401)]
)
def test_retryable_runs_the_node_once_when_every_candidate_refused_the_request(
    fp: FakeProvider, fault: Callable[[], Any]
) -> None:
    fp.set_default("fake-one", fault())
    fp.set_default("fake-two", fault())
    # The default fall-over: each candidate refuses in turn, and the call fails with them all.
    fallback = "rate_limit, server_error, context_window, content_policy, authentication"
    llm = _model(_policy(fp.openai_base, fallback_on=fallback))
    error, runs = _run(llm, RetryPolicy(retry_on=policyroute.retryable, **QUICK))
    assert isinstance(error, AllCandidatesFailedError)
    assert runs == 1
    assert len(fp.requests) == 2


def test_an_async_node_is_not_retried_after_a_budget_refusal(fp: FakeProvider) -> None:
    llm = _model(_policy(fp.openai_base, fallback_on=NO_FALLBACK, budget=BUDGET))
    runs: list[int] = []

    async def agent(state: _State) -> dict[str, Any]:
        runs.append(1)
        return {"messages": [await llm.ainvoke(state["messages"])]}

    builder = StateGraph(_State)
    builder.add_node("agent", agent, retry_policy=RetryPolicy(**QUICK))
    builder.add_edge(START, "agent")
    graph = builder.compile()
    with pytest.raises(BudgetExceeded):
        asyncio.run(graph.ainvoke({"messages": [HumanMessage("hi")]}))
    assert runs == [1]
    assert not fp.requests


def test_retryable_defers_to_langgraph_for_other_exceptions() -> None:
    assert policyroute.retryable(ConnectionError("reset"))
    assert not policyroute.retryable(KeyError("x"))
    assert policyroute.retryable(Exception("anything else"))


def test_the_policy_answering_keeps_the_graph_running(fp: FakeProvider) -> None:
    fp.set_default("fake-one", Reply(text="hello"))
    llm = _model(_policy(fp.openai_base, fallback_on=NO_FALLBACK))
    runs: list[int] = []
    out = _graph(llm, RetryPolicy(**QUICK), runs).invoke({"messages": [HumanMessage("hi")]})
    assert out["messages"][-1].content == "hello"
    assert runs == [1]


@pytest.mark.parametrize(
    "fault", [Fault.context_length, Fault.content_filter, lambda: Fault.status(401)]
)
def test_the_default_retry_policy_runs_the_node_once_when_every_candidate_refused(
    fp: FakeProvider, fault: Callable[[], Any]
) -> None:
    fp.set_default("fake-one", fault())
    fp.set_default("fake-two", fault())
    fallback = "rate_limit, server_error, context_window, content_policy, authentication"
    llm = _model(_policy(fp.openai_base, fallback_on=fallback))
    error, runs = _run(llm, RetryPolicy(max_attempts=3, **QUICK))
    assert type(error) is AllCandidatesRefusedError
    assert isinstance(error, AllCandidatesFailedError)
    assert isinstance(error, ValueError)
    assert runs == 1
    assert len(fp.requests) == 2
    assert [e.error_class for e in error.errors] == [error.error_class] * 2


def test_a_call_refused_by_one_candidate_and_failing_transiently_on_another_is_retried(
    fp: FakeProvider,
) -> None:
    fp.set_default("fake-one", Fault.context_length())
    fp.set_default("fake-two", Fault.status(503))
    llm = _model(_policy(fp.openai_base, fallback_on="rate_limit, server_error, context_window"))
    error, runs = _run(llm, RetryPolicy(max_attempts=2, **QUICK))
    assert type(error) is AllCandidatesFailedError
    assert runs == 2
    assert policyroute.retryable(error)


def test_a_refusal_with_a_candidate_skipped_circuit_open_is_not_taken_for_a_refusal_everywhere(
    fp: FakeProvider,
) -> None:
    fp.set_default("fake-one", Fault.status(503))
    fp.set_default("fake-two", Fault.context_length())
    text = _policy(fp.openai_base, fallback_on="rate_limit, server_error, context_window")
    llm = _model(
        text.replace(
            "  max_tokens: 100\n",
            "  max_tokens: 100\n  circuit_breaker: {failures: 1, cooldown: 60s}\n",
        )
    )
    with pytest.raises(AllCandidatesFailedError):
        llm.invoke("hi")  # one's 503 opens its breaker
    with pytest.raises(AllCandidatesFailedError) as caught:
        llm.invoke("hi")  # one is skipped, two refuses: one may take it after its cooldown
    assert type(caught.value) is AllCandidatesFailedError
    assert [r.model for r in fp.requests] == ["fake-one", "fake-two", "fake-two"]


def test_a_refusal_by_the_probe_of_a_route_whose_only_deployment_is_circuit_open_is_a_refusal(
    fp: FakeProvider,
) -> None:
    fp.set_default("fake-one", Fault.status(401))
    text = _policy(fp.openai_base, fallback_on="rate_limit, server_error, authentication")
    llm = _model(
        text.replace("    to: [one, two]\n", "    to: one\n").replace(
            "  max_tokens: 100\n",
            "  max_tokens: 100\n  circuit_breaker: {failures: 1, cooldown: 60s}\n",
        )
    )
    with pytest.raises(AllCandidatesRefusedError):
        llm.invoke("hi")  # the 401 opens one's breaker
    error, runs = _run(llm, RetryPolicy(max_attempts=3, **QUICK))
    # one is tried as its breaker's probe and refuses the key again: nothing was skipped
    assert type(error) is AllCandidatesRefusedError
    assert "skipped circuit-open" not in str(error)
    assert runs == 1
    assert not policyroute.retryable(error)
    assert [r.model for r in fp.requests] == ["fake-one", "fake-one"]
