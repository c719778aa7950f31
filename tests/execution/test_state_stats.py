"""In-flight counts and latencies under cancelled, abandoned, refused and failed calls: every
attempt that counted itself in flight counts itself out, and only answers are latencies."""

from __future__ import annotations

import asyncio
import gc
import os
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from exec_support import RecordingAccounting, StubPolicy, arun, ask, candidate
from test_state_gate import Gate, settle_tasks

from policyroute.errors import BudgetExceeded, ProviderError
from policyroute.execution.breaker import CircuitBreakers
from policyroute.execution.executor import Executor
from policyroute.execution.hooks import Admission, AttemptInfo, CallInfo, CallOutcome
from policyroute.policy.loader import load_policy_text
from policyroute.policy.model import CircuitBreakerSpec, DefaultsSpec, RetrySpec
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(30)

NO_RETRY = DefaultsSpec(retry=RetrySpec(attempts=0))


class SlowToClose:
    """An opened stream that sends nothing, and whose closing waits until told to finish."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.closing = asyncio.Event()
        self.closed = asyncio.Event()

    def __aiter__(self) -> SlowToClose:
        return self

    async def __anext__(self) -> Any:
        self.reading.set()
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closing.set()
        await self.closed.wait()


def test_a_stream_cancelled_again_while_closing_still_counts_out_and_settles(
    fp: FakeProvider,
) -> None:
    """A task group or timeout cancels a streaming task, and cancels it again while the
    provider's stream is being closed: the attempt still leaves the in-flight count, gives
    its breaker probe back and is settled."""
    stream = SlowToClose()

    async def acompletion(**params: Any) -> SlowToClose:
        return stream

    clock = [0.0]
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=10), clock=lambda: clock[0])
    breakers.record_failure("a", "server_error")
    clock[0] = 10.0  # half-open: the stream is the probe
    acct = RecordingAccounting()
    policy = StubPolicy([candidate("a", fp.openai_base)], defaults=NO_RETRY)
    ex = Executor(policy, accounting=acct, breakers=breakers, acompletion=acompletion)

    async def consume() -> None:
        async for _ in ex.astream(ask()):
            pass

    async def scenario() -> None:
        task = asyncio.create_task(consume())
        await stream.reading.wait()
        assert ex.stats.in_flight("a") == 1
        task.cancel()
        await stream.closing.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(scenario())
    assert ex.stats.in_flight("a") == 0
    assert ex.stats.latency("a") is None
    assert acct.statuses == ["cancelled"]
    assert breakers.is_available("a")


# ------------------------------------------------------------------ every abnormal end

POLICY = """policyroute: 1
name: state-stats
models:
  a: {{model: openai/a, api_base: "{base}", api_key: "${{POLICYROUTE_TEST_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
  b: {{model: openai/b, api_base: "{base}", api_key: "${{POLICYROUTE_TEST_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
groups:
  pool: {{strategy: {strategy}, models: [a, b]}}
routes:
  - name: default
    to: pool
defaults:
  retry: {{attempts: 0}}
  circuit_breaker: {{failures: 1000, cooldown: 30s}}
receipts: {{sink: none}}
"""


class Finishing(RecordingAccounting):
    """Says when a call has finished (however it ended); can refuse or downgrade alias a."""

    def __init__(self, guard: str | None = None) -> None:
        super().__init__()
        self.guard = guard
        self.done = asyncio.Event()

    def admit(self, attempt: AttemptInfo) -> Admission:
        if attempt.candidate.alias == "a" and self.guard == "refuse":
            raise BudgetExceeded(
                budget="daily",
                scope="*",
                limit=Decimal(1),
                spent=Decimal(1),
                reserved=Decimal(0),
                estimate=Decimal(1),
            )
        admission = super().admit(attempt)
        if attempt.candidate.alias == "a" and self.guard == "downgrade":
            return Admission(params=admission.params, downgrade_to="b")
        return admission

    def finish(self, call: CallInfo, outcome: CallOutcome) -> None:
        super().finish(call, outcome)
        self.done.set()


def least_busy(fp: FakeProvider, acct: Finishing, **kw: Any) -> Executor:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    policy = load_policy_text(POLICY.format(base=fp.openai_base, strategy="least_busy"))
    return Executor(policy, accounting=acct, **kw)


async def _held_then_cancelled(ex: Executor, gate: Gate, acct: Finishing) -> None:
    task = asyncio.create_task(ex.acomplete(ask()))
    await gate.wait_entered(1)
    assert ex.stats.in_flight("a") == 1
    task.cancel()
    await settle_tasks(task)


async def _wait_for_gives_up(ex: Executor, gate: Gate, acct: Finishing) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ex.acomplete(ask()), timeout=0.05)


async def _gather_cancelled(ex: Executor, gate: Gate, acct: Finishing) -> None:
    # A group of calls cancelled as one (what a task group does when a sibling fails); the
    # second call goes to b (a is busier), held there too.
    gate.gated.add("openai/b")
    group = asyncio.gather(ex.acomplete(ask()), ex.acomplete(ask()))
    await gate.wait_entered(2)
    assert ex.stats.in_flight("a") == ex.stats.in_flight("b") == 1
    group.cancel()
    with pytest.raises(asyncio.CancelledError):
        await group


async def _stream_broken_out_of(ex: Executor, gate: Gate, acct: Finishing) -> None:
    # The consumer stops after the first event and neither closes nor keeps the generator.
    gate.release(1)
    stream = ex.astream(ask())
    async for _ in stream:
        break
    assert ex.stats.in_flight("a") == 1
    del stream
    gc.collect()
    await acct.done.wait()


async def _refused_or_downgraded(ex: Executor, gate: Gate, acct: Finishing) -> None:
    gate.release(1)
    try:
        await ex.acomplete(ask())
    except BudgetExceeded:
        pass


async def _completion_raises(ex: Executor, gate: Gate, acct: Finishing) -> None:
    with pytest.raises(ProviderError):
        await ex.acomplete(ask())


ENDS = {
    "cancelled": (_held_then_cancelled, None),
    "wait_for": (_wait_for_gives_up, None),
    "gather": (_gather_cancelled, None),
    "stream_abandoned": (_stream_broken_out_of, None),
    "refused": (_refused_or_downgraded, "refuse"),
    "downgraded": (_refused_or_downgraded, "downgrade"),
    "raises": (_completion_raises, None),
}


@pytest.mark.parametrize("end", ENDS)
def test_least_busy_comes_back_to_a_deployment_after_abnormal_ends(
    fp: FakeProvider, end: str
) -> None:
    """Whatever ended a call on a, a counts no call in flight and records no latency, so
    ``least_busy`` sends the next call to a again (listed first, ties keep list order)."""
    scenario, guard = ENDS[end]
    gate, acct = Gate("a"), Finishing(guard)
    failing = [end == "raises"]

    def acompletion(**params: Any) -> Any:
        if failing[0]:
            raise TypeError("the completion callable failed synchronously")
        return gate(**params)

    ex = least_busy(fp, acct, acompletion=acompletion)

    async def run() -> str:
        await scenario(ex, gate, acct)
        assert ex.stats.in_flight("a") == 0
        assert ex.stats.latency("a") is None
        acct.guard, failing[0] = None, False
        gate.gated.clear()
        return (await ex.acomplete(ask())).deployment

    assert arun(run()) == "a"
    assert ex.stats.in_flight("a") == ex.stats.in_flight("b") == 0


def test_failed_attempts_are_not_latencies(fp: FakeProvider) -> None:
    """``fastest`` must not prefer a deployment for failing fast."""
    fp.script("a", Fault.status(500), Fault.status(500))
    policy = StubPolicy([candidate(a, fp.openai_base) for a in ("a", "b")], defaults=NO_RETRY)
    ex = Executor(policy, accounting=RecordingAccounting())
    assert ex.complete(ask()).deployment == "b"
    assert arun(ex.acomplete(ask())).deployment == "b"
    assert ex.stats.latency("a") is None
    assert ex.stats.latency("b") is not None


def test_resetting_the_stats_keeps_counting_the_calls_in_flight(fp: FakeProvider) -> None:
    gate = Gate("a")
    policy = StubPolicy([candidate("a", fp.openai_base)], defaults=NO_RETRY)
    ex = Executor(policy, accounting=RecordingAccounting(), acompletion=gate)

    async def scenario() -> None:
        before = asyncio.create_task(ex.acomplete(ask()))
        await gate.wait_entered(1)
        ex.stats.reset()
        after = asyncio.create_task(ex.acomplete(ask()))
        await gate.wait_entered(2)
        gate.release(1)
        await before
        assert ex.stats.in_flight("a") == 1, "the call started after the reset is running"
        gate.release(2)
        await after

    arun(scenario())
    assert ex.stats.in_flight("a") == 0


def test_threads_abandoning_streams_and_failing_leave_nothing_in_flight(
    fp: FakeProvider,
) -> None:
    fp.set_default("a", Fault.status(503))
    policy = StubPolicy([candidate(a, fp.openai_base) for a in ("a", "b")], defaults=NO_RETRY)
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1000, cooldown=30))
    ex = Executor(policy, accounting=RecordingAccounting(), breakers=breakers)

    def one(i: int) -> None:
        if i % 2:
            assert ex.complete(ask()).deployment == "b"
        else:
            stream = ex.stream(ask())
            next(stream)  # b's first words; the stream is then dropped unclosed
            del stream

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(one, range(24)))
    assert ex.stats.in_flight("a") == ex.stats.in_flight("b") == 0
    assert ex.stats.latency("a") is None
