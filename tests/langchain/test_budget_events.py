"""Budget thresholds crossed by a call reach that call's LangChain callbacks as custom events."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from policyroute.accounting import BudgetThresholdWarning
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.events import EVENT_NAME

# One call of the fast model costs about $0.00002, well over 0.001% of $1; the worst case of a
# call ($0.008 with 4096 output tokens) stays far under the limit.
BUDGET = """
budgets:
  - name: daily
    limit_usd: 1
    window: day
    warn_at: [0.00001, 0.5]
store: {backend: memory}
"""


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, UUID]] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data, run_id))


class AsyncRecorder(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, UUID]] = []

    async def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data, run_id))


@pytest.fixture
def budgeted(make_policy: Callable[..., str], request: pytest.FixtureRequest) -> ChatPolicyRoute:
    # A policy of its own per test: accounting (and its budget store) is shared per policy.
    name = "budget-" + request.node.name.replace("_", "-").replace("[", "-").strip("]")[:60]
    return ChatPolicyRoute(policy=make_policy(name=name.lower(), extra=BUDGET))


@pytest.fixture(autouse=True)
def _quiet_threshold_warnings() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BudgetThresholdWarning)
        yield


def test_invoke_dispatches_the_crossed_threshold(budgeted: ChatPolicyRoute) -> None:
    recorder = Recorder()
    message = budgeted.invoke("hello", config={"callbacks": [recorder], "run_id": UUID(int=7)})
    ((name, data, run_id),) = recorder.events
    assert name == EVENT_NAME
    assert run_id == UUID(int=7)
    assert data["budget"] == "daily"
    assert data["threshold"] == pytest.approx(0.00001)
    assert data["request_id"] == message.response_metadata["policyroute"]["request_id"]
    assert isinstance(data["spent"], str)
    again = Recorder()
    budgeted.invoke("hello", config={"callbacks": [again]})
    assert again.events == []  # crossed once per window, reported once


def test_stream_dispatches_before_the_last_chunk(budgeted: ChatPolicyRoute) -> None:
    recorder = Recorder()
    events_when_last: list[int] = []
    for chunk in budgeted.stream("hello", config={"callbacks": [recorder]}):
        if chunk.chunk_position == "last":
            events_when_last.append(len(recorder.events))
    assert events_when_last == [1]
    assert [name for name, _, _ in recorder.events] == [EVENT_NAME]


@pytest.mark.asyncio
async def test_async_calls_and_astream_events(budgeted: ChatPolicyRoute) -> None:
    recorder = AsyncRecorder()
    await budgeted.ainvoke("hello", config={"callbacks": [recorder]})
    assert [name for name, _, _ in recorder.events] == [EVENT_NAME]


@pytest.mark.asyncio
async def test_astream_events_carry_the_event(budgeted: ChatPolicyRoute) -> None:
    custom = [
        event
        async for event in budgeted.astream_events("hello", version="v2")
        if event["event"] == "on_custom_event"
    ]
    assert [event["name"] for event in custom] == [EVENT_NAME]
    assert custom[0]["data"]["budget"] == "daily"


def test_existing_threshold_callback_still_runs(budgeted: ChatPolicyRoute) -> None:
    seen: list[Any] = []
    accounting = budgeted.executor.accounting
    previous = accounting.on_threshold  # type: ignore[attr-defined]
    previous.previous = seen.append
    try:
        budgeted.invoke("hello")
    finally:
        previous.previous = None
    assert [event.budget for event in seen] == ["daily"]


def test_an_abandoned_stream_still_reports_its_threshold(budgeted: ChatPolicyRoute) -> None:
    recorder = Recorder()
    stream = budgeted.stream("hello there, tell me a long story", config={"callbacks": [recorder]})
    next(stream)
    stream.close()
    assert [name for name, _, _ in recorder.events] == [EVENT_NAME]


@pytest.mark.asyncio
async def test_an_abandoned_async_stream_still_reports_its_threshold(
    budgeted: ChatPolicyRoute,
) -> None:
    recorder = AsyncRecorder()
    stream = budgeted.astream("hello there, tell me a long story", config={"callbacks": [recorder]})
    async for _ in stream:
        break
    # Closing the caller's generator settles the call there and then, not when it is
    # collected: the event reaches this run.
    await stream.aclose()
    assert [name for name, _, _ in recorder.events] == [EVENT_NAME]
