"""How many calls a circuit-open deployment sees, as users meet it through ``ChatPolicyRoute``
and the executor: one probe at a time, whatever the concurrency, and no probe or stale failure
that keeps a deployment shut after it recovered."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from exec_support import RecordingAccounting, StubPolicy, arun, ask, candidate
from test_state_gate import Gate

from policyroute.errors import (
    BadRequestError,
    NoCandidateError,
    PolicyRouteError,
    ProviderError,
    StreamInterruptedError,
)
from policyroute.execution.breaker import CircuitBreakers
from policyroute.execution.executor import CallResult, Executor
from policyroute.execution.hooks import NullAccounting
from policyroute.execution.result import StreamDone
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.model import CircuitBreakerSpec, DefaultsSpec, RetrySpec
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(60)

os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")

NO_RETRY = DefaultsSpec(retry=RetrySpec(attempts=0))

_MODEL = """
  {alias}:
    model: openai/fake-{alias}
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
"""


def chat_model(fp: FakeProvider, *aliases: str, failures: int = 1) -> ChatPolicyRoute:
    """A chat model whose one route falls over through ``aliases`` in order, no retries,
    breakers opening after ``failures`` failures for a minute."""
    models = "".join(_MODEL.format(alias=a, base=fp.openai_base) for a in aliases)
    text = f"""policyroute: 1
name: breaker-probes
models:{models}
routes:
  - name: default
    to: [{", ".join(aliases)}]
defaults:
  retry: {{attempts: 0}}
  circuit_breaker: {{failures: {failures}, cooldown: 60s}}
receipts: {{sink: none}}
"""
    return ChatPolicyRoute(policy=text, accounting=NullAccounting())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def probe_due(fp: FakeProvider) -> tuple[Executor, CircuitBreakers, Clock]:
    """An executor over deployments a and b, no retries, whose breaker on a opened at 0 for a
    10-second cooldown; the clock stands at 10, so the next call to a is the half-open probe."""
    clock = Clock()
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=10), clock=clock)
    policy = StubPolicy([candidate(x, fp.openai_base) for x in ("a", "b")], defaults=NO_RETRY)
    ex = Executor(policy, accounting=RecordingAccounting(), breakers=breakers)
    breakers.record_failure("a", "server_error")
    clock.now = 10.0
    return ex, breakers, clock


# ------------------------------------------------------------------ every deployment open


@pytest.fixture
def solo_down(fp: FakeProvider) -> Iterator[ChatPolicyRoute]:
    """A route with one deployment, down (503) and circuit-open after one failed call; the
    next request it gets is held unanswered (for 3 seconds)."""
    fp.set_default("fake-solo", Fault.status(503))
    llm = chat_model(fp, "solo")
    with pytest.raises(ProviderError):
        llm.invoke("hi")
    assert llm.executor.breakers.state("solo") == "open"
    fp.script("fake-solo", Fault.no_response(timeout=3))
    yield llm
    fp.reset()


def test_a_stampede_on_a_route_whose_every_deployment_is_open_sends_one_call(
    fp: FakeProvider, solo_down: ChatPolicyRoute
) -> None:
    """While every deployment of a route cools down, a call still tries the one opened
    longest ago (so that a blip does not fail every call for a minute), but as its breaker's
    probe: 99 concurrent calls fail fast instead of all going to a deployment that is down."""
    llm = solo_down

    async def scenario() -> list[Any]:
        probe = asyncio.create_task(llm.ainvoke("hi"))
        await asyncio.to_thread(fp.wait_for_requests, 2)
        others = await asyncio.gather(
            *(llm.ainvoke("hi") for _ in range(99)), return_exceptions=True
        )
        probe.cancel()
        await asyncio.gather(probe, return_exceptions=True)
        return others

    others = arun(scenario())
    assert fp.attempts("fake-solo") == 2, "only the failed call and the probe reached it"
    assert all(isinstance(o, NoCandidateError) for o in others)
    assert "circuit-open" in str(others[0])
    # The cancelled probe gave its slot back: the next call is let through again.
    with pytest.raises(ProviderError):
        llm.invoke("hi")
    assert fp.attempts("fake-solo") == 3
    assert llm.executor.stats.in_flight("solo") == 0


def test_threads_stampeding_an_open_route_send_one_call(
    fp: FakeProvider, solo_down: ChatPolicyRoute
) -> None:
    llm = solo_down

    def call(_: int) -> str:
        try:
            llm.invoke("hi")
        except NoCandidateError:
            return "fast"
        except Exception as exc:  # the held probe, which the provider never answers
            return type(exc).__name__
        return "answered"

    with ThreadPoolExecutor(8) as pool:
        probe = pool.submit(call, 0)
        fp.wait_for_requests(2)
        outcomes = list(pool.map(call, range(40)))
        attempts = fp.attempts("fake-solo")
        probe.result(timeout=30)  # the provider gives up on it after 3 seconds
    assert outcomes == ["fast"] * 40
    assert attempts == 2, "only the failed call and the probe reached it"
    assert llm.executor.stats.in_flight("solo") == 0


# ------------------------------------------------------------------ streams cut midway


@pytest.mark.parametrize("mode", ["astream", "stream"])
def test_a_deployment_that_cuts_every_stream_opens_its_breaker(fp: FakeProvider, mode: str) -> None:
    """A stream cut after its first words cannot fall over (the caller has them), so the
    caller gets StreamInterruptedError; but the deployment failed, and after ``failures``
    such cuts its breaker opens and later streams go to the next deployment."""
    fp.set_default("fake-flaky", Fault.stream_cut(after=2, reply=Reply(text="one two three four")))
    fp.set_default("fake-backup", Reply(text="fine"))
    llm = chat_model(fp, "flaky", "backup", failures=2)

    def one() -> str:
        try:
            if mode == "stream":
                return "".join(str(c.content) for c in llm.stream("hi"))
            return arun(_acollect(llm))
        except StreamInterruptedError:
            return "cut"

    assert [one() for _ in range(4)] == ["cut", "cut", "fine", "fine"]
    ex = llm.executor
    assert ex.breakers.state("flaky") == "open"
    assert fp.attempts("fake-flaky") == 2
    # fastest ranks it as failing, not as a deployment it has never measured.
    assert ex.stats.ranking_latency("flaky") == math.inf
    assert ex.stats.in_flight("flaky") == ex.stats.in_flight("backup") == 0


async def _acollect(llm: ChatPolicyRoute) -> str:
    return "".join([str(c.content) async for c in llm.astream("hi")])


# ------------------------------------------------------------------ stale failures


def test_failures_of_calls_sent_during_the_outage_do_not_reopen_a_recovered_deployment(
    fp: FakeProvider,
) -> None:
    """Three calls to a hang through an outage; meanwhile the breaker opens, cools down and
    its probe finds a answering again. The three then fail (timeouts of the old outage):
    a stays closed, and the next call goes to it."""
    gate, clock = Gate("a"), Clock()
    breakers = CircuitBreakers(CircuitBreakerSpec(failures=2, cooldown=10), clock=clock)
    policy = StubPolicy([candidate(x, fp.openai_base) for x in ("a", "b")], defaults=NO_RETRY)
    ex = Executor(policy, accounting=RecordingAccounting(), breakers=breakers, acompletion=gate)

    async def scenario() -> list[str]:
        stale = [asyncio.create_task(ex.acomplete(ask())) for _ in range(3)]
        await gate.wait_entered(3)
        breakers.record_failure("a", "timeout")  # other calls saw the outage
        breakers.record_failure("a", "timeout")
        assert breakers.state("a") == "open"
        clock.now = 10.0
        probe = asyncio.create_task(ex.acomplete(ask()))
        await gate.wait_entered(4)
        gate.release(4)
        assert (await probe).deployment == "a"
        assert breakers.state("a") == "closed"
        fp.script("a", *[Fault.status(500)] * 3)
        for n in (1, 2, 3):
            gate.release(n)
        done = [(await t).deployment for t in stale]
        gate.release(5)
        after = await ex.acomplete(ask())
        return [*done, after.deployment]

    assert arun(scenario()) == ["b", "b", "b", "a"]
    assert breakers.state("a") == "closed"


def test_failures_of_calls_sent_before_a_reset_do_not_count() -> None:
    cb = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=10))
    before = cb.acquire("a")
    assert before is not None
    cb.reset()
    cb.record_failure("a", "server_error", before)
    assert cb.state("a") == "closed"
    other = cb.acquire("b")
    cb.reset("b")
    cb.record_failure("b", "server_error", other)
    assert cb.state("b") == "closed"
    cb.record_failure("b", "server_error", cb.acquire("b"))
    assert cb.state("b") == "open"


# ------------------------------------------------------------------ probes that never report


def test_a_probe_stream_kept_open_unread_does_not_shut_the_deployment_for_good(
    fp: FakeProvider,
) -> None:
    """The half-open probe is a sync stream whose consumer read its first words and keeps
    it open; a minute on, another call may probe, finds a answering and closes the breaker."""
    ex, breakers, clock = probe_due(fp)
    held = ex.stream(ask())
    try:
        next(held)
        assert not breakers.is_available("a")
        assert ex.complete(ask()).deployment == "b"
        clock.now = 10.0 + 59.9
        assert ex.complete(ask()).deployment == "b"
        clock.now = 10.0 + 60.0
        assert ex.complete(ask()).deployment == "a"
        assert breakers.state("a") == "closed"
    finally:
        held.close()
    assert breakers.state("a") == "closed"
    assert ex.stats.in_flight("a") == 0


def test_the_probe_lease_is_the_cooldown_when_longer() -> None:
    clock = Clock()
    cb = CircuitBreakers(CircuitBreakerSpec(failures=1, cooldown=300), clock=clock, probe_lease=5)
    cb.record_failure("a", "timeout")
    clock.now = 300.0
    lost = cb.acquire("a")
    assert lost is not None
    assert lost.is_probe
    clock.now = 599.0
    assert cb.acquire("a") is None
    clock.now = 600.0
    second = cb.acquire("a")
    assert second is not None
    assert second.is_probe
    cb.release("a", lost)  # the lost probe's end no longer gives the slot back
    assert not cb.is_available("a")
    cb.record_failure("a", "timeout", second)
    assert cb.state("a") == "open"


@pytest.mark.parametrize("lease", [0, -1.0])
def test_a_probe_lease_must_be_positive(lease: float) -> None:
    with pytest.raises(PolicyRouteError, match="probe_lease"):
        CircuitBreakers(CircuitBreakerSpec(), probe_lease=lease)


# ------------------------------------------------------------------ probe ends that say nothing


@pytest.mark.parametrize("fault", ["bad_request", "content_filter"])
def test_a_probe_refused_for_its_request_leaves_the_breaker_half_open(
    fp: FakeProvider, fault: str
) -> None:
    """A probe the provider refuses for the request's sake says nothing of the deployment:
    the slot is given back (the next call probes) and the breaker neither closes nor
    reopens for a new cooldown."""
    ex, breakers, _ = probe_due(fp)
    fp.script("a", Fault.bad_request() if fault == "bad_request" else Fault.content_filter())
    if fault == "bad_request":  # the caller's mistake: the call stops
        with pytest.raises(BadRequestError):
            ex.complete(ask())
    else:  # content_policy falls over to the next deployment
        assert ex.complete(ask()).deployment == "b"
    assert breakers.state("a") == "half_open"
    assert breakers.opened_at("a") == 0.0
    assert ex.complete(ask()).deployment == "a"
    assert breakers.state("a") == "closed"


def test_an_abandoned_probe_stream_gives_its_slot_back(fp: FakeProvider) -> None:
    ex, breakers, _ = probe_due(fp)

    async def scenario() -> CallResult:
        stream = ex.astream(ask())
        async for _ in stream:
            break
        assert not breakers.is_available("a")
        await stream.aclose()
        assert breakers.is_available("a")
        events = [e async for e in ex.astream(ask())]
        done = events[-1]
        assert isinstance(done, StreamDone)
        return done.result

    assert arun(scenario()).deployment == "a"
    assert breakers.state("a") == "closed"
    assert ex.stats.in_flight("a") == 0
