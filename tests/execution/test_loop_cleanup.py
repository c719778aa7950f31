"""Calls made in one ``asyncio.run`` after another leave no litellm client of a finished loop
behind, in litellm's cache or in its module-level handlers: each loop's clients and aiohttp
sessions are closed as the loop ends, instead of being left with their sockets for the garbage
collector. A session of another loop, still running in another thread, is left open."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

import policyroute
from policyroute._lazy import import_litellm
from policyroute.api import clear_cache
from policyroute.execution.loop_cleanup import close_litellm_clients_with_loop
from policyroute.testing import FakeProvider, Reply

POLICY = """
policyroute: 1
name: loop-cleanup
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_LOOP_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
  b: {{model: anthropic/fake-b, api_base: "{abase}", api_key: "${{PR_LOOP_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes:
  - name: openai
    when: {{metadata.wire: {{eq: openai}}}}
    to: a
  - name: anthropic
    to: b
receipts: {{sink: none}}
defaults: {{max_tokens: 10}}
"""


@pytest.fixture
def fp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setenv("PR_LOOP_KEY", "sk-loop-0123456789")
    with FakeProvider() as provider:
        provider.set_default("*", Reply(text="hi"))
        yield provider
    clear_cache()


def _calls(policy: str, wires: tuple[str, ...], loops: list[int]) -> list[str]:
    async def calls() -> list[str]:
        loops.append(id(asyncio.get_running_loop()))
        return await _acalls(policy, wires)

    return asyncio.run(calls())


async def _acalls(policy: str, wires: tuple[str, ...]) -> list[str]:
    """A call and a streamed call on each wire, in the running loop."""
    answers = []
    for wire in wires:
        response = await policyroute.acompletion(
            policy=policy,
            messages=[{"role": "user", "content": "hello"}],
            metadata={"wire": wire},
        )
        answers.append(str(response.choices[0].message.content))
        stream = await policyroute.acompletion(
            policy=policy,
            messages=[{"role": "user", "content": "hello"}],
            metadata={"wire": wire},
            stream=True,
        )
        answers.append("".join([c.choices[0].delta.content or "" async for c in stream]))
    return answers


def _open_sessions_of_closed_loops(ignore: set[int]) -> list[aiohttp.ClientSession]:
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, aiohttp.ClientSession)
        and id(o) not in ignore
        and not o.closed
        and o._loop.is_closed()
    ]


def _sessions() -> set[int]:
    return {id(o) for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession)}


@pytest.mark.parametrize("wires", [("openai",), ("anthropic",), ("openai", "anthropic")])
def test_no_client_of_a_finished_loop_stays_cached(fp: FakeProvider, wires: tuple[str]) -> None:
    policy = POLICY.format(base=fp.openai_base, abase=fp.anthropic_base)
    loops: list[int] = []
    for _ in range(3):
        assert _calls(policy, wires, loops) == ["hi"] * 2 * len(wires)
    cached = import_litellm().in_memory_llm_clients_cache.cache_dict
    assert [k for k in cached if any(str(k).endswith(f"-{n}") for n in loops)] == []


@pytest.mark.parametrize("wires", [("anthropic",), ("openai", "anthropic")])
def test_no_session_of_a_finished_loop_stays_open(fp: FakeProvider, wires: tuple[str]) -> None:
    # litellm's module-level handler, which Anthropic's streamed calls go through, keeps the
    # aiohttp session of the last loop that used it, outside the client cache.
    policy = POLICY.format(base=fp.openai_base, abase=fp.anthropic_base)
    before = _sessions()
    for _ in range(3):
        assert _calls(policy, wires, []) == ["hi"] * 2 * len(wires)
        assert _open_sessions_of_closed_loops(before) == []


def test_a_session_of_another_running_loop_is_left_open(fp: FakeProvider) -> None:
    policy = POLICY.format(base=fp.openai_base, abase=fp.anthropic_base)
    made = threading.Event()
    release = threading.Event()
    seen: dict[str, Any] = {}

    async def other_loop() -> None:
        seen["answers"] = await _acalls(policy, ("anthropic",))
        seen["session"] = _module_level_session()
        made.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)

    thread = threading.Thread(target=asyncio.run, args=(other_loop(),))
    thread.start()
    try:
        assert made.wait(10)

        async def this_loop() -> None:
            await close_litellm_clients_with_loop()

        asyncio.run(this_loop())  # ends while the other loop runs on
        session = seen["session"]
        assert isinstance(session, aiohttp.ClientSession)
        assert not session.closed
    finally:
        release.set()
        thread.join(10)
    assert seen["answers"] == ["hi"] * 2
    assert session.closed  # when its own loop ended


def test_the_aiohttp_provider_handler_session_is_closed_and_forgotten() -> None:
    from litellm.main import base_llm_aiohttp_handler as handler

    sessions: list[aiohttp.ClientSession] = []

    async def use() -> None:
        await close_litellm_clients_with_loop()
        # How the handler gets its session for an ``aiohttp_openai/`` call.
        sessions.append(handler._get_async_client_session())

    try:
        asyncio.run(use())
        assert sessions[0].closed
        assert handler.client_session is None
        asyncio.run(use())  # the next loop gets a new session, closed with it in turn
        assert sessions[1] is not sessions[0]
        assert sessions[1].closed
    finally:
        for session in sessions:
            if not session.closed:
                session._connector = None  # nothing connected: drop it without a warning
        handler.client_session = None


def _module_level_session() -> Any:
    handler = vars(import_litellm()).get("module_level_aclient")
    return handler._client._transport.client


def test_a_finished_loop_is_not_kept_alive_by_its_clean_up() -> None:
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def register() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await close_litellm_clients_with_loop()

    asyncio.run(register())
    gc.collect()
    assert loops[0]() is None
