"""The executor's unstreamed async calls skip work that cannot change them: litellm's own
``acompletion`` is called without the URL-credentials wrapper when the params carry no user
info (the wrapper would pass them on unchanged), and a loop already set to close litellm's
clients is not asked again. Each fast path sends what the general path sends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from exec_support import StubPolicy, candidate

from policyroute._lazy import import_litellm
from policyroute.execution import loop_cleanup
from policyroute.execution.executor import Executor
from policyroute.request import Request

MESSAGES = [{"role": "user", "content": "hi"}]


class _Answer:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.choices = [{"message": {"role": "assistant", "content": "ok"}}]
        self._hidden_params: dict[str, Any] = {"api_base": params.get("api_base")}


def _recording_litellm(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """litellm's ``acompletion`` replaced by a recorder (before the executor wraps it)."""
    sent: list[dict[str, Any]] = []

    async def acompletion(**params: Any) -> _Answer:
        sent.append(params)
        return _Answer(params)

    monkeypatch.setattr(import_litellm(), "acompletion", acompletion)
    return sent


@pytest.mark.parametrize(
    "api_base",
    ["http://gw.example/v1", "http://proxy:secret@gw.example/v1", "http://@gw.example/v1"],
)
def test_a_call_sends_what_the_wrapper_sends(
    monkeypatch: pytest.MonkeyPatch, api_base: str
) -> None:
    sent = _recording_litellm(monkeypatch)
    executor = Executor(StubPolicy([candidate("mini", api_base)]))

    async def both() -> None:
        result = await executor.acomplete(Request(messages=MESSAGES))
        params = dict(result.response.params)  # what the executor's call sent litellm
        params.pop("messages")
        await executor.acompletion_fn(messages=MESSAGES, **params)  # the general path

    asyncio.run(both())
    fast, general = sent
    if "@" in api_base:  # the credentials left the URL on both paths
        assert "@" not in fast["api_base"]
        general = {**general, "api_base": fast["api_base"]}
    assert fast == general


def test_the_fast_path_skips_the_wrapper_only_without_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _recording_litellm(monkeypatch)
    for api_base, moved in [("http://gw/v1", False), ("http://u:pw@gw/v1", True)]:
        executor = Executor(StubPolicy([candidate("mini", api_base)]))
        result = asyncio.run(executor.acomplete(Request(messages=MESSAGES)))
        sent = result.response.params
        assert ("extra_headers" in sent) is moved
        assert sent["api_base"] == "http://gw/v1"


def test_an_injected_acompletion_is_always_called(monkeypatch: pytest.MonkeyPatch) -> None:
    litellm_calls = _recording_litellm(monkeypatch)
    injected: list[dict[str, Any]] = []

    async def mine(**params: Any) -> _Answer:
        injected.append(params)
        return _Answer(params)

    executor = Executor(StubPolicy([candidate("mini", "http://gw/v1")]), acompletion=mine)
    executor.acompletion_fn  # noqa: B018 - built before the swap below, as a test might
    asyncio.run(executor.acomplete(Request(messages=MESSAGES)))
    assert len(injected) == 1
    assert litellm_calls == []


def test_a_loop_is_registered_for_clean_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _recording_litellm(monkeypatch)
    registrations: list[asyncio.AbstractEventLoop] = []
    register = loop_cleanup.close_litellm_clients_with_loop

    async def counted() -> None:
        registrations.append(asyncio.get_running_loop())
        await register()

    monkeypatch.setattr("policyroute.execution.executor.close_litellm_clients_with_loop", counted)
    executor = Executor(StubPolicy([candidate("mini", "http://gw/v1")]))

    async def calls() -> bool:
        for _ in range(3):
            await executor.acomplete(Request(messages=MESSAGES))
        return loop_cleanup.closes_with_loop(asyncio.get_running_loop())

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(calls())
        assert registrations == [loop]
        assert loop_cleanup.closes_with_loop(loop)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert not loop_cleanup.closes_with_loop(loop)  # its clean-up ran and forgot it
