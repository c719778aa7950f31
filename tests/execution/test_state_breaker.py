"""The circuit breaker shared by concurrent calls: one probe at a time in half-open state,
whatever the calls that were already in flight do meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from exec_support import RecordingAccounting, StubPolicy, arun, ask, candidate
from test_state_gate import Gate, settle_tasks

from policyroute.execution.breaker import CircuitBreakers
from policyroute.execution.executor import CallResult, Executor
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
