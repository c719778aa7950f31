"""A call counts in flight on a deployment from the moment it is chosen, not once its budget
reservation is made: ``least_busy`` (and ``fastest``'s exploring) read the counts when the
next calls route, and calls routed while one waits for its reservation must see the
deployment taken. Every way an attempt ends before it is sent (refused by the budget,
re-routed by a downgrade, cancelled or failing while admitted) gives the count back."""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from exec_support import arun

from policyroute.errors import BudgetExceeded, BudgetStoreError
from policyroute.execution.hooks import Admission, AttemptInfo, NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(60)

os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")

_MODEL = """
  {alias}:
    model: openai/fake-{alias}
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
"""


def policy(base: str, extra: str = "") -> str:
    """A least_busy group of a and b, and a spare group c the budget can downgrade to."""
    models = "".join(_MODEL.format(alias=a, base=base) for a in ("a", "b", "c"))
    return f"""policyroute: 1
name: in-flight-from-choice
models:{models}
groups:
  pool: {{strategy: least_busy, models: [a, b]}}
  spare: {{strategy: ordered, models: [c]}}
routes:
  - name: default
    to: pool
defaults:
  retry: {{attempts: 0}}
  max_tokens: 100
  circuit_breaker: {{failures: 1000, cooldown: 30s}}
receipts: {{sink: none}}
{extra}"""


SQLITE_BUDGET = """budgets:
  - name: all
    limit_usd: 100
    window: day
store: {backend: sqlite, path: budgets.sqlite3}
"""


@pytest.fixture
def slow(fp: FakeProvider) -> FakeProvider:
    fp.set_default("*", Reply(text="fine thanks", delay=1.0))
    return fp


def test_least_busy_splits_concurrent_calls_evenly_with_a_sqlite_budget(
    slow: FakeProvider, workdir: Path
) -> None:
    """Each call's reservation goes through the SQLite store in a worker thread; calls routed
    meanwhile saw the deployments of those still reserving as idle (21 to a, 19 to b)."""
    llm = ChatPolicyRoute(policy=policy(slow.openai_base, SQLITE_BUDGET))

    async def calls() -> None:
        await asyncio.gather(*(llm.ainvoke("hi") for _ in range(40)))

    arun(calls())
    assert Counter(r.body["model"] for r in slow.requests) == {"fake-a": 20, "fake-b": 20}
    stats = llm.executor.stats
    assert stats.in_flight("a") == stats.in_flight("b") == 0


# ------------------------------------------------------------------ a held admission


class HeldAdmission(NullAccounting):
    """Accounting whose admissions wait until released, then end as ``then`` says:
    ``admit``, ``refuse`` (BudgetExceeded), ``downgrade`` (to the group spare) or ``fail``
    (the store cannot be reached); deployment c is always admitted at once."""

    def __init__(self, then: str) -> None:
        self.then = then
        self.waiting = threading.Semaphore(0)  # one release per admission reached
        self.release = threading.Event()

    def _decide(self, attempt: AttemptInfo) -> Admission:
        if self.then == "refuse":
            raise BudgetExceeded(
                budget="all",
                scope="global",
                limit=Decimal(1),
                spent=Decimal(1),
                reserved=Decimal(0),
                estimate=Decimal("0.1"),
            )
        if self.then == "downgrade":
            return Admission(params=attempt.params, downgrade_to="spare")
        if self.then == "fail":
            raise BudgetStoreError("the budget store cannot be reached")
        return Admission(params=attempt.params)

    def admit(self, attempt: AttemptInfo) -> Admission:
        if attempt.candidate.alias == "c":
            return Admission(params=attempt.params)
        self.waiting.release()
        self.release.wait(10)
        return self._decide(attempt)

    async def aadmit(self, attempt: AttemptInfo) -> Admission:
        if attempt.candidate.alias == "c":
            return Admission(params=attempt.params)
        self.waiting.release()
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return self._decide(attempt)


def _reached(accounting: HeldAdmission) -> None:
    assert accounting.waiting.acquire(timeout=10), "no admission was asked for"


def _model(fp: FakeProvider, accounting: HeldAdmission) -> ChatPolicyRoute:
    fp.set_default("*", Reply(text="fine thanks"))
    return ChatPolicyRoute(policy=policy(fp.openai_base), accounting=accounting)


ASYNC_CALLS: dict[str, Callable[[ChatPolicyRoute], Any]] = {
    "ainvoke": lambda llm: llm.ainvoke("hi"),
    "astream": lambda llm: _drain(llm),
}


async def _drain(llm: ChatPolicyRoute) -> None:
    async for _ in llm.astream("hi"):
        pass


@pytest.mark.parametrize("how", sorted(ASYNC_CALLS))
def test_a_call_waiting_for_its_reservation_counts_in_flight(fp: FakeProvider, how: str) -> None:
    accounting = HeldAdmission("admit")
    llm = _model(fp, accounting)
    stats = llm.executor.stats

    async def scenario() -> None:
        first = asyncio.ensure_future(ASYNC_CALLS[how](llm))
        await asyncio.to_thread(_reached, accounting)
        assert (stats.in_flight("a"), stats.in_flight("b")) == (1, 0)
        second = asyncio.ensure_future(ASYNC_CALLS[how](llm))
        await asyncio.to_thread(_reached, accounting)
        assert (stats.in_flight("a"), stats.in_flight("b")) == (1, 1)  # routed to b
        accounting.release.set()
        await asyncio.gather(first, second)

    arun(scenario())
    assert [r.body["model"] for r in fp.requests] in (["fake-a", "fake-b"], ["fake-b", "fake-a"])
    assert stats.in_flight("a") == stats.in_flight("b") == 0


ENDINGS = {"refuse": BudgetExceeded, "fail": BudgetStoreError, "downgrade": None}


@pytest.mark.parametrize("how", sorted(ASYNC_CALLS))
@pytest.mark.parametrize("then", sorted(ENDINGS))
def test_an_attempt_ended_at_admission_gives_its_count_back(
    fp: FakeProvider, how: str, then: str
) -> None:
    accounting = HeldAdmission(then)
    llm = _model(fp, accounting)
    stats = llm.executor.stats

    async def scenario() -> None:
        call = asyncio.ensure_future(ASYNC_CALLS[how](llm))
        await asyncio.to_thread(_reached, accounting)
        assert stats.in_flight("a") == 1
        accounting.release.set()
        expected = ENDINGS[then]
        if expected is None:
            await call
        else:
            with pytest.raises(expected):
                await call

    arun(scenario())
    assert [r.body["model"] for r in fp.requests] == (["fake-c"] if then == "downgrade" else [])
    assert stats.in_flight("a") == stats.in_flight("b") == stats.in_flight("c") == 0


@pytest.mark.parametrize("how", sorted(ASYNC_CALLS))
def test_a_call_cancelled_while_its_reservation_is_made_gives_its_count_back(
    fp: FakeProvider, how: str
) -> None:
    accounting = HeldAdmission("admit")
    llm = _model(fp, accounting)
    stats = llm.executor.stats

    async def scenario() -> None:
        call = asyncio.ensure_future(ASYNC_CALLS[how](llm))
        await asyncio.to_thread(_reached, accounting)
        assert stats.in_flight("a") == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    arun(scenario())
    assert fp.requests == []
    assert stats.in_flight("a") == stats.in_flight("b") == 0


@pytest.mark.parametrize("how", ["invoke", "stream"])
@pytest.mark.parametrize("then", sorted(ENDINGS))
def test_a_sync_attempt_ended_at_admission_gives_its_count_back(
    fp: FakeProvider, how: str, then: str
) -> None:
    accounting = HeldAdmission(then)
    llm = _model(fp, accounting)
    stats = llm.executor.stats
    errors: list[BaseException] = []

    def call() -> None:
        try:
            if how == "invoke":
                llm.invoke("hi")
            else:
                list(llm.stream("hi"))
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    _reached(accounting)
    assert stats.in_flight("a") == 1
    accounting.release.set()
    thread.join(10)
    expected = ENDINGS[then]
    assert [type(e) for e in errors] == ([] if expected is None else [expected])
    assert [r.body["model"] for r in fp.requests] == (["fake-c"] if then == "downgrade" else [])
    assert stats.in_flight("a") == stats.in_flight("b") == stats.in_flight("c") == 0


@pytest.fixture
def down_a(fp: FakeProvider) -> FakeProvider:
    fp.set_default("fake-a", Fault.status(503))
    return fp


def test_a_call_that_falls_over_counts_only_where_it_is(down_a: FakeProvider) -> None:
    """a fails and the call falls over to b: a's count goes back as b's is taken."""
    down_a.set_default("fake-b", Reply(text="fine thanks"))
    llm = ChatPolicyRoute(policy=policy(down_a.openai_base), accounting=NullAccounting())
    assert llm.invoke("hi").content == "fine thanks"
    assert [r.body["model"] for r in down_a.requests] == ["fake-a", "fake-b"]
    stats = llm.executor.stats
    assert stats.in_flight("a") == stats.in_flight("b") == 0
