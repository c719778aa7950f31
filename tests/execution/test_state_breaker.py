"""The circuit breaker shared by concurrent calls: one probe at a time in half-open state,
whatever the calls that were already in flight do meanwhile."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import litellm
import pytest
from exec_support import RecordingAccounting, StubPolicy, arun, ask, candidate
from test_state_gate import Gate, settle_tasks

from policyroute.errors import BudgetExceeded
from policyroute.execution.breaker import CircuitBreakers
from policyroute.execution.executor import CallResult, Executor
from policyroute.execution.hooks import Admission, AttemptInfo
from policyroute.policy.model import CircuitBreakerSpec, DefaultsSpec, RetrySpec
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(30)

NO_RETRY = DefaultsSpec(retry=RetrySpec(attempts=0))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def build(
    fp: FakeProvider, gate: Gate, clock: Clock, *, failures: int = 1
) -> tuple[Executor, CircuitBreakers]:
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=failures, cooldown=10), clock=clock)
    policy = StubPolicy([candidate(a, fp.openai_base) for a in ("a", "b")], defaults=NO_RETRY)
    ex = Executor(policy, accounting=RecordingAccounting(), breakers=breakers, acompletion=gate)
    return ex, breakers


@pytest.mark.parametrize("stale_end", ["cancelled", "bad_request", "server_error"])
def test_a_call_from_before_the_outage_leaves_the_probe_alone(
    fp: FakeProvider, stale_end: str
) -> None:
    """A call sent while the breaker was closed ends while the half-open probe is in flight:
    however it ends, the probe stays the only call let through, under 50 concurrent calls."""
    gate, clock = Gate("a"), Clock()
    ex, breakers = build(fp, gate, clock)
    if stale_end == "bad_request":
        fp.script("a", Fault.bad_request())
    elif stale_end == "server_error":
        fp.script("a", Fault.status(500))

    async def scenario() -> list[Any]:
        stale = asyncio.create_task(ex.acomplete(ask()))
        await gate.wait_entered(1)
        breakers.record_failure("a", "server_error")  # another call saw the outage
        clock.now = 10.0  # cooldown over: the next call to a is the probe
        probe = asyncio.create_task(ex.acomplete(ask()))
        await gate.wait_entered(2)
        assert not breakers.is_available("a")
        if stale_end == "cancelled":
            stale.cancel()
        else:
            gate.release(1)
        await settle_tasks(stale)
        assert not breakers.is_available("a"), "the probe slot was given back by another call"
        others = await asyncio.gather(*(ex.acomplete(ask()) for _ in range(50)))
        assert gate.count("a") == 2
        gate.release(2)
        return [await probe, *others]

    results = arun(scenario())
    assert all(isinstance(r, CallResult) for r in results)
    assert results[0].deployment == "a"
    assert {r.deployment for r in results[1:]} == {"b"}
    assert breakers.state("a") == "closed"
    assert ex.stats.in_flight("a") == ex.stats.in_flight("b") == 0


class Refusing(RecordingAccounting):
    """Refuses (or downgrades to group ``b``) every attempt on the aliases it is given."""

    def __init__(self, *, refuse: tuple[str, ...] = (), downgrade: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.refused, self.downgraded = set(refuse), set(downgrade)

    def admit(self, attempt: AttemptInfo) -> Admission:
        alias = attempt.candidate.alias
        if alias in self.refused:
            raise BudgetExceeded(
                budget="daily",
                scope="*",
                limit=Decimal(1),
                spent=Decimal(1),
                reserved=Decimal(0),
                estimate=Decimal(1),
            )
        if alias in self.downgraded:
            return Admission(params=attempt.params, downgrade_to="b")
        return super().admit(attempt)


def half_open(breakers: CircuitBreakers, clock: Clock, alias: str = "a") -> None:
    breakers.record_failure(alias, "server_error")
    clock.now += 10.0


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("guard", ["refuse", "downgrade"])
def test_a_probe_the_budget_guard_stops_is_given_back(
    fp: FakeProvider, mode: str, guard: str
) -> None:
    clock = Clock()
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=10), clock=clock)
    policy = StubPolicy(
        [candidate("a", fp.openai_base)],
        defaults=NO_RETRY,
        groups={"b": [candidate("b", fp.openai_base)]},
    )
    acct = Refusing(refuse=("a",)) if guard == "refuse" else Refusing(downgrade=("a",))
    ex = Executor(policy, accounting=acct, breakers=breakers)
    half_open(breakers, clock)

    def call() -> CallResult:
        return ex.complete(ask()) if mode == "sync" else arun(ex.acomplete(ask()))

    if guard == "refuse":
        with pytest.raises(BudgetExceeded):
            call()
    else:
        assert call().deployment == "b"
    assert breakers.state("a") == "half_open"
    assert breakers.is_available("a")
    assert fp.attempts("a") == 0
    assert ex.stats.in_flight("a") == 0


def test_a_cancelled_probe_is_given_back(fp: FakeProvider) -> None:
    """``asyncio.wait_for`` gives up on the probe: the next call probes again."""
    gate, clock = Gate("a"), Clock()
    ex, breakers = build(fp, gate, clock)
    half_open(breakers, clock)

    async def scenario() -> CallResult:
        # The gate holds the probe until the timeout gives up on it (wherever it got to).
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ex.acomplete(ask()), timeout=0.05)
        assert breakers.is_available("a")
        assert ex.stats.in_flight("a") == 0
        gate.release(1)
        gate.release(2)
        return await ex.acomplete(ask())

    assert arun(scenario()).deployment == "a"
    assert breakers.state("a") == "closed"
    assert ex.stats.latency("a") is not None  # the probe's answer, not the cancelled call


class HeldSleep:
    """An async sleep that never ends until cancelled; says when it began."""

    def __init__(self) -> None:
        self.began = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.began.set()
        await asyncio.Event().wait()


def test_a_call_cancelled_while_waiting_to_retry_holds_no_probe(fp: FakeProvider) -> None:
    """With no cooldown, a deployment whose breaker just opened is half-open at once: the call
    backing off before retrying it must not hold the probe through its sleep."""
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=0))
    sleep = HeldSleep()
    retry = DefaultsSpec(retry=RetrySpec(attempts=2))
    policy = StubPolicy([candidate("a", fp.openai_base)], defaults=retry)
    ex = Executor(policy, accounting=RecordingAccounting(), breakers=breakers, asleep=sleep)
    fp.script("a", Fault.status(500))

    async def scenario() -> None:
        task = asyncio.create_task(ex.acomplete(ask()))
        await sleep.began.wait()
        assert breakers.is_available("a")
        task.cancel()
        await settle_tasks(task)

    arun(scenario())
    assert breakers.is_available("a")
    assert ex.stats.in_flight("a") == 0


def test_reset_while_calls_are_in_flight(fp: FakeProvider) -> None:
    """The breakers are reset while a probe is in flight; the deployment fails again and a
    new probe goes out: the old probe's failure leaves the new probe in charge."""
    gate, clock = Gate("a"), Clock()
    ex, breakers = build(fp, gate, clock)
    fp.script("a", Fault.status(500))
    half_open(breakers, clock)

    async def scenario() -> list[Any]:
        old_probe = asyncio.create_task(ex.acomplete(ask()))
        await gate.wait_entered(1)
        breakers.reset()
        assert breakers.state("a") == "closed"
        half_open(breakers, clock)
        new_probe = asyncio.create_task(ex.acomplete(ask()))
        await gate.wait_entered(2)
        gate.release(1)  # the old probe fails (500), and falls over to b
        assert (await old_probe).deployment == "b"
        assert not breakers.is_available("a"), "the new probe is still in flight"
        gate.release(2)
        return [await new_probe]

    assert [r.deployment for r in arun(scenario())] == ["a"]
    assert breakers.state("a") == "closed"


def test_one_deployments_failures_never_open_anothers_breaker(fp: FakeProvider) -> None:
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=2, cooldown=30))
    policy = StubPolicy([candidate(a, fp.openai_base) for a in ("a", "b")], defaults=NO_RETRY)
    ex = Executor(policy, accounting=RecordingAccounting(), breakers=breakers)
    fp.set_default("a", Fault.status(503))  # a stays down

    async def scenario() -> list[CallResult]:
        return list(await asyncio.gather(*(ex.acomplete(ask()) for _ in range(20))))

    results = arun(scenario())
    assert {r.deployment for r in results} == {"b"}
    assert breakers.state("a") == "open"
    assert breakers.state("b") == "closed"
    assert ex.stats.in_flight("a") == ex.stats.in_flight("b") == 0


def test_outage_then_recovery_under_concurrent_calls(fp: FakeProvider) -> None:
    """a is down, then up: concurrent calls fall over to b, open a's breaker, skip a while it
    cools down; after the cooldown exactly one call probes a and closes it."""
    clock = Clock()
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=3, cooldown=10), clock=clock)
    policy = StubPolicy([candidate(a, fp.openai_base) for a in ("a", "b")], defaults=NO_RETRY)
    ex = Executor(policy, accounting=RecordingAccounting(), breakers=breakers)
    fp.schedule_outage("a", failures=3)

    async def wave(n: int) -> list[str]:
        results = await asyncio.gather(*(ex.acomplete(ask()) for _ in range(n)))
        return [r.deployment for r in results]

    async def scenario() -> None:
        assert await wave(3) == ["b"] * 3  # the outage's three failures fell over
        assert breakers.state("a") == "open"
        assert await wave(30) == ["b"] * 30  # skipped while cooling down
        assert fp.attempts("a") == 3
        clock.now = 10.0
        deployments = await wave(30)
        assert fp.attempts("a") == 4  # one probe
        assert deployments.count("a") == 1
        assert breakers.state("a") == "closed"
        assert await wave(5) == ["a"] * 5

    arun(scenario())
    assert ex.stats.in_flight("a") == ex.stats.in_flight("b") == 0


def test_one_probe_among_threads_calling_complete(fp: FakeProvider) -> None:
    """Sync calls from 50 threads while a is half-open: one probe, held until the others are
    done, the rest served by b."""
    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def completion(**params: Any) -> Any:
        calls.append(params["model"])
        if params["model"] == "openai/a":
            entered.set()
            release.wait(timeout=20)
        return litellm.completion(**params)

    clock = Clock()
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=10), clock=clock)
    policy = StubPolicy([candidate(a, fp.openai_base) for a in ("a", "b")], defaults=NO_RETRY)
    ex = Executor(
        policy, accounting=RecordingAccounting(), breakers=breakers, completion=completion
    )
    half_open(breakers, clock)
    with ThreadPoolExecutor(8) as pool:
        probe = pool.submit(ex.complete, ask())
        assert entered.wait(timeout=20)
        others = list(pool.map(lambda _: ex.complete(ask()).deployment, range(50)))
        release.set()
        assert probe.result().deployment == "a"
    assert others == ["b"] * 50
    assert calls.count("openai/a") == 1
    assert breakers.state("a") == "closed"
