"""Per-call facts of concurrent LangChain calls: each call routes and is charged by its own
RunnableConfig, whichever entry point, thread or task it comes through, and whether or not a
callback handler observes it."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from exec_support import arun
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig, RunnableLambda

from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink
from policyroute.langchain import ChatPolicyRoute
from policyroute.policy.loader import load_policy_text
from policyroute.testing import FakeProvider

pytestmark = [
    pytest.mark.timeout(60),
    # A garbage collection in the middle of these tests (they make a lot of garbage) can meet
    # sockets of litellm's own clients that litellm never closes: litellm's, not ours (see
    # _litellm_sockets_collected_here in conftest.py).
    pytest.mark.filterwarnings(
        r"ignore:Exception ignored in. <socket\.socket:pytest.PytestUnraisableExceptionWarning",
        r"ignore:Exception ignored in. <function _SelectorTransport\.__del__"
        ":pytest.PytestUnraisableExceptionWarning",
    ),
]

# litellm's OpenAI client insists on a key; the fake provider ignores it.
os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")

N = 100
NESTED = 24

POLICY = """policyroute: 1
name: state-facts
models:
  fast: {{model: openai/fast, api_base: "{base}", api_key: "${{POLICYROUTE_TEST_KEY}}",
          price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
  strong: {{model: openai/strong, api_base: "{base}", api_key: "${{POLICYROUTE_TEST_KEY}}",
            price: {{input_per_mtok: 3, output_per_mtok: 15}}}}
routes:
  - name: tagged
    when: {{tags: {{contains: strong}}}}
    to: strong
  - name: default
    to: fast
defaults:
  # A connection the loaded loopback server drops is retried: these tests are about facts.
  retry: {{attempts: 2, backoff: {{initial: 0.01s, max: 0.05s}}}}
receipts: {{sink: none}}
"""


class Receipts:
    """Call receipts, kept by a callable sink that many threads write to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Mapping[str, Any]] = []

    def __call__(self, record: Mapping[str, Any]) -> None:
        if record.get("kind") == "call":
            with self._lock:
                self.calls.append(dict(record))

    def users(self) -> list[str | None]:
        return sorted((r.get("user") for r in self.calls), key=str)

    def routes_by_user(self) -> dict[str | None, str]:
        return {r.get("user"): r.get("route") for r in self.calls}


@pytest.fixture
def model(provider: FakeProvider) -> tuple[ChatPolicyRoute, Receipts]:
    policy = load_policy_text(POLICY.format(base=provider.openai_base))
    receipts = Receipts()
    accounting = PolicyAccounting(policy, guard=None, sinks=[CallableSink(receipts)])
    return ChatPolicyRoute(policy=policy, accounting=accounting), receipts


def user_config(i: int, **extra: Any) -> RunnableConfig:
    return {"metadata": {"user_id": f"u{i}"}, **extra}  # type: ignore[typeddict-item]


EXPECTED = sorted((f"u{i}" for i in range(N)), key=str)


class Observer(BaseCallbackHandler):
    """A handler that makes LangChain take its full run-manager path."""


# ------------------------------------------------------------------ one call, many callers


def test_threads_invoke_and_stream_are_charged_to_their_own_users(
    model: tuple[ChatPolicyRoute, Receipts],
) -> None:
    llm, receipts = model

    def one(i: int) -> None:
        if i % 2:
            llm.invoke(f"hi {i}", config=user_config(i))
        else:
            assert list(llm.stream(f"hi {i}", config=user_config(i)))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(N)))
    assert receipts.users() == EXPECTED


def test_tasks_ainvoke_and_astream_are_charged_to_their_own_users(
    model: tuple[ChatPolicyRoute, Receipts],
) -> None:
    llm, receipts = model

    async def one(i: int) -> None:
        if i % 2:
            await llm.ainvoke(f"hi {i}", config=user_config(i))
        else:
            assert [c async for c in llm.astream(f"hi {i}", config=user_config(i))]

    async def scenario() -> None:
        await asyncio.gather(*(one(i) for i in range(N)))

    arun(scenario())
    assert receipts.users() == EXPECTED


@pytest.mark.parametrize("api", ["batch", "abatch"])
def test_batches_with_a_config_per_input(model: tuple[ChatPolicyRoute, Receipts], api: str) -> None:
    llm, receipts = model
    inputs = [f"hi {i}" for i in range(N)]
    configs = [user_config(i) for i in range(N)]
    if api == "batch":
        llm.batch(inputs, config=configs)
    else:
        arun(llm.abatch(inputs, config=configs))
    assert receipts.users() == EXPECTED


# ------------------------------------------------------------------ nested in a chain

CALLS: dict[str, Callable[[ChatPolicyRoute, str, RunnableConfig], Any]] = {
    "invoke": lambda llm, x, cfg: llm.invoke(x, config=cfg),
    "stream": lambda llm, x, cfg: list(llm.stream(x, config=cfg)),
}


async def _ainvoke(llm: ChatPolicyRoute, x: str, cfg: RunnableConfig) -> Any:
    return await llm.ainvoke(x, config=cfg)


async def _astream(llm: ChatPolicyRoute, x: str, cfg: RunnableConfig) -> Any:
    return [c async for c in llm.astream(x, config=cfg)]


ACALLS = {"ainvoke": _ainvoke, "astream": _astream}


def _outer(i: int, observed: bool) -> RunnableConfig:
    tags = ["strong"] if i % 2 else []
    return user_config(i, tags=tags, callbacks=[Observer()] if observed else None)


@pytest.mark.parametrize("observed", [False, True], ids=["bare", "observed"])
@pytest.mark.parametrize("entry", [*CALLS, *ACALLS])
def test_a_nested_call_with_its_own_metadata_keeps_the_chains_facts(
    model: tuple[ChatPolicyRoute, Receipts], entry: str, observed: bool
) -> None:
    """The chat model called inside a chain, with a config of its own (``task``): the user
    and tags given to the chain still route and charge the call, as LangChain's run manager
    says, whether or not a handler observes it."""
    llm, receipts = model
    inner: RunnableConfig = {"metadata": {"task": "chat"}}
    inputs = [f"hi {i}" for i in range(NESTED)]
    configs = [_outer(i, observed) for i in range(NESTED)]
    if entry in CALLS:
        call = CALLS[entry]
        RunnableLambda(lambda x: call(llm, x, inner)).batch(inputs, config=configs)
    else:
        acall = ACALLS[entry]

        async def nested(x: str) -> Any:
            return await acall(llm, x, inner)

        arun(RunnableLambda(nested).abatch(inputs, config=configs))
    assert receipts.users() == sorted((f"u{i}" for i in range(NESTED)), key=str)
    routes = receipts.routes_by_user()
    assert routes == {f"u{i}": "tagged" if i % 2 else "default" for i in range(NESTED)}
