"""Calls in flight, as ``least_busy`` reads them, come back to zero whatever ends the calls:
answers, provider errors, timeouts, cancellations, streams cut by the provider, sync streams
broken out of and collected, async streams abandoned; all at once, from tasks and threads
sharing one chat model."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from exec_support import arun

from policyroute.errors import BadRequestError, ProviderError, StreamInterruptedError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(60)

os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")

KINDS = ("ok", "down", "hang", "cut", "long", "bad")
ALIASES = [f"{kind}_{x}" for kind in KINDS for x in ("a", "b")]

_MODEL = """
  {alias}:
    model: openai/fake-{alias}
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}{timeout}
"""

_ROUTE = """
  - name: {kind}
    when: {{metadata.kind: {kind}}}
    to: pool_{kind}
"""


def policy(base: str) -> str:
    """Two deployments per kind of ending, in a least_busy group the kind's route goes to."""
    models = "".join(
        _MODEL.format(
            alias=a, base=base, timeout="\n    timeout: 0.2s" if a.startswith("hang") else ""
        )
        for a in ALIASES
    )
    groups = "".join(
        f"\n  pool_{k}: {{strategy: least_busy, models: [{k}_a, {k}_b]}}" for k in KINDS
    )
    routes = "".join(_ROUTE.format(kind=k) for k in KINDS)
    return f"""policyroute: 1
name: in-flight-counts
models:{models}
groups:{groups}
routes:{routes}
  - name: default
    to: pool_ok
defaults:
  retry: {{attempts: 0}}
  circuit_breaker: {{failures: 1000, cooldown: 30s}}
receipts: {{sink: none}}
"""


def kind(name: str) -> dict[str, Any]:
    return {"metadata": {"kind": name}}


def script(fp: FakeProvider) -> None:
    steps = {
        "ok": Reply(text="fine thanks"),
        "down": Fault.status(503),
        "hang": Fault.no_response(timeout=5),
        "cut": Fault.stream_cut(after=2, reply=Reply(text="one two three four five")),
        "long": Reply(text=" ".join(["word"] * 200)),
        "bad": Fault.bad_request(),
    }
    for alias in ALIASES:
        fp.set_default(f"fake-{alias}", steps[alias.split("_")[0]])


# ------------------------------------------------------------------ the endings, async


async def answered(llm: ChatPolicyRoute) -> None:
    await llm.ainvoke("hi", config=kind("ok"))
    assert "".join([str(c.content) async for c in llm.astream("hi", config=kind("ok"))])


async def provider_error(llm: ChatPolicyRoute) -> None:
    with pytest.raises(ProviderError) as failed:
        await llm.ainvoke("hi", config=kind("down"))
    assert failed.value.error_class == "server_error"


async def timed_out(llm: ChatPolicyRoute) -> None:
    with pytest.raises(ProviderError) as failed:
        await llm.ainvoke("hi", config=kind("hang"))
    assert failed.value.error_class == "timeout"


async def given_up_on(llm: ChatPolicyRoute) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(llm.ainvoke("hi", config=kind("hang")), timeout=0.05)


async def stream_task_cancelled(llm: ChatPolicyRoute) -> None:
    async def consume() -> None:
        async for _ in llm.astream("hi", config=kind("hang")):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def stream_cut(llm: ChatPolicyRoute) -> None:
    with pytest.raises(StreamInterruptedError):
        async for _ in llm.astream("hi", config=kind("cut")):
            pass


async def stream_abandoned(llm: ChatPolicyRoute) -> None:
    stream = llm.astream("hi", config=kind("long"))
    async for _ in stream:
        break
    del stream  # neither closed nor kept: the loop's finalizer closes it


async def refused_request(llm: ChatPolicyRoute) -> None:
    with pytest.raises(BadRequestError):
        await llm.ainvoke("hi", config=kind("bad"))


# ------------------------------------------------------------------ the endings, sync


def answered_sync(llm: ChatPolicyRoute) -> None:
    llm.invoke("hi", config=kind("ok"))
    assert "".join(str(c.content) for c in llm.stream("hi", config=kind("ok")))


def provider_error_sync(llm: ChatPolicyRoute) -> None:
    with pytest.raises(ProviderError) as failed:
        llm.invoke("hi", config=kind("down"))
    assert failed.value.error_class == "server_error"


def timed_out_sync(llm: ChatPolicyRoute) -> None:
    with pytest.raises(ProviderError) as failed:
        llm.invoke("hi", config=kind("hang"))
    assert failed.value.error_class == "timeout"


def stream_cut_sync(llm: ChatPolicyRoute) -> None:
    with pytest.raises(StreamInterruptedError):
        for _ in llm.stream("hi", config=kind("cut")):
            pass


def stream_broken_out_of_sync(llm: ChatPolicyRoute) -> None:
    for _ in llm.stream("hi", config=kind("long")):
        break  # the generator is dropped here, half read, and closed as it is freed


ASYNC_ENDS: list[Callable[[ChatPolicyRoute], Awaitable[None]]] = [
    answered,
    provider_error,
    timed_out,
    given_up_on,
    stream_task_cancelled,
    stream_cut,
    stream_abandoned,
    refused_request,
]
SYNC_ENDS: list[Callable[[ChatPolicyRoute], None]] = [
    answered_sync,
    provider_error_sync,
    timed_out_sync,
    stream_cut_sync,
    stream_broken_out_of_sync,
]


def test_every_ending_at_once_leaves_nothing_in_flight(fp: FakeProvider) -> None:
    script(fp)
    llm = ChatPolicyRoute(policy=policy(fp.openai_base), accounting=NullAccounting())
    stats = llm.executor.stats

    async def scenario() -> None:
        calls = [end(llm) for end in ASYNC_ENDS for _ in range(3)]
        calls += [asyncio.to_thread(end, llm) for end in SYNC_ENDS for _ in range(2)]
        await asyncio.gather(*calls)
        # The abandoned async streams close on the loop, soon after they are dropped.
        for _ in range(200):
            if not any(stats.in_flight(a) for a in ALIASES):
                break
            await asyncio.sleep(0.01)

    arun(scenario())
    assert {a: stats.in_flight(a) for a in ALIASES} == dict.fromkeys(ALIASES, 0)
    # Only answers are latencies; the cancelled, cut and abandoned ones are not.
    assert stats.latency("ok_a") is not None or stats.latency("ok_b") is not None
    assert all(stats.latency(a) is None for a in ALIASES if not a.startswith("ok"))
    assert all(llm.executor.breakers.state(a) == "closed" for a in ALIASES)
