"""litellm's own success logging is skipped for a call only while nothing would read it.

With no callback registered with litellm (and no response cache or ``max_budget``), a unary
call through policyroute leaves litellm no logging work: neither the async success handler on
the loop nor the sync one in litellm's thread pool runs. A callback registered with litellm,
or passed with the call, sees every call as before, successes and failures, from the next call
on; and the mark never outlives the call.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from exec_support import arun
from langchain_core.messages import HumanMessage

import policyroute
from policyroute._lazy import import_litellm
from policyroute.api import clear_cache
from policyroute.execution.unlogged import release, unlogged, unlogged_call
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply

POLICY = """
policyroute: 1
name: unlogged
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_UNLOGGED_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes: [{{name: default, to: a}}]
receipts: {{sink: none}}
defaults: {{max_tokens: 10, retry: {{attempts: 2, backoff: {{initial: 1ms, max: 1ms}}}}}}
"""
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def policy(fp: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("PR_UNLOGGED_KEY", "sk-unlogged-0123456789")
    fp.set_default("fake-a", Reply(text="hi"))
    yield POLICY.format(base=fp.openai_base)
    clear_cache()


@pytest.fixture
def litellm(monkeypatch: pytest.MonkeyPatch) -> Any:
    """litellm with no callback registered (earlier calls may have registered the name
    "cache", see below), its lists put back as they were after the test."""
    module = import_litellm()
    for name in (
        "callbacks",
        "success_callback",
        "_async_success_callback",
        "failure_callback",
        "_async_failure_callback",
        "input_callback",
        "_async_input_callback",
    ):
        monkeypatch.setattr(module, name, [])
    return module


@pytest.fixture
def handlers_run(litellm: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often litellm's success handlers ran, async and sync, counted as they start."""
    from litellm.litellm_core_utils.litellm_logging import Logging

    counts = {"async": 0, "sync": 0}
    lock = threading.Lock()
    async_handler = Logging.async_success_handler
    sync_handler = Logging.success_handler

    async def counted_async(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            counts["async"] += 1
        return await async_handler(self, *args, **kwargs)

    def counted_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            counts["sync"] += 1
        return sync_handler(self, *args, **kwargs)

    monkeypatch.setattr(Logging, "async_success_handler", counted_async)
    monkeypatch.setattr(Logging, "success_handler", counted_sync)
    return counts


def _until(seen: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    """Wait for litellm's logging, which runs after the call returns (a task, a thread)."""
    deadline = time.monotonic() + seconds
    while not seen():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {seconds} s")
        time.sleep(0.01)


async def _drain() -> None:
    """Let the loop run what litellm scheduled after the call."""
    for _ in range(50):
        await asyncio.sleep(0.001)


def test_a_call_leaves_litellm_no_logging_work_while_nothing_reads_it(
    policy: str, litellm: Any, handlers_run: dict[str, int]
) -> None:
    chat = ChatPolicyRoute(policy=policy)

    async def through_policyroute() -> None:
        assert (await chat.ainvoke([HumanMessage("hello")])).content == "hi"
        answer = await policyroute.acompletion(policy=policy, messages=MESSAGES)
        assert answer.choices[0].message.content == "hi"
        await _drain()

    arun(through_policyroute())
    assert chat.invoke([HumanMessage("hello")]).content == "hi"
    time.sleep(0.2)  # litellm's thread pool would have started by now
    assert handlers_run == {"async": 0, "sync": 0}

    # The same call made with litellm directly is logged: the counters see it.
    async def bare() -> None:
        await litellm.acompletion(
            model="openai/fake-a",
            api_base=policy.split('api_base: "')[1].split('"')[0],
            api_key="sk-bare",
            messages=MESSAGES,
        )
        await _drain()

    arun(bare())
    _until(lambda: handlers_run["async"] >= 1, "litellm's async success handler")


class _Recorder:
    """A litellm callback that notes the events it gets, by kind and model."""

    def __init__(self) -> None:
        from litellm.integrations.custom_logger import CustomLogger

        events = self.events = []

        class Logger(CustomLogger):  # type: ignore[misc]
            def log_success_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                events.append(("sync success", kwargs.get("model")))

            async def async_log_success_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                events.append(("async success", kwargs.get("model")))

            async def async_log_failure_event(
                self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
            ) -> None:
                events.append(("async failure", kwargs.get("model")))

        self.logger = Logger()
        self.events: list[tuple[str, Any]]

    def count(self, kind: str) -> int:
        return sum(1 for seen, _ in self.events if seen == kind)


def test_a_callback_registered_with_litellm_sees_every_call_from_the_next_on(
    policy: str, litellm: Any, fp: FakeProvider
) -> None:
    chat = ChatPolicyRoute(policy=policy)
    recorder = _Recorder()
    assert chat.invoke([HumanMessage("hello")]).content == "hi"  # nothing registered yet

    litellm.callbacks.append(recorder.logger)

    async def calls() -> None:
        assert (await chat.ainvoke([HumanMessage("hello")])).content == "hi"
        fp.script("fake-a", Fault.status(500), Reply(text="again"))
        assert (await chat.ainvoke([HumanMessage("hello")])).content == "again"
        await _drain()

    arun(calls())
    _until(lambda: recorder.count("async success") >= 2, "two async successes")
    _until(lambda: recorder.count("async failure") >= 1, "the failed attempt")
    assert chat.invoke([HumanMessage("hello")]).content == "hi"
    _until(lambda: recorder.count("sync success") >= 1, "the sync call's success")
    assert {model for _, model in recorder.events} == {"fake-a"}


def test_a_callback_passed_with_the_call_sees_it(policy: str, litellm: Any) -> None:
    recorder = _Recorder()
    answer = policyroute.completion(policy=policy, messages=MESSAGES, callbacks=[recorder.logger])
    assert answer.choices[0].message.content == "hi"
    _until(lambda: recorder.count("sync success") == 1, "the call's own callback")


@pytest.mark.parametrize(
    ("setting", "value"), [("max_budget", 100.0), ("success_callback", ["cache", "langfuse"])]
)
def test_litellm_settings_that_read_its_logging_keep_it(
    litellm: Any, monkeypatch: pytest.MonkeyPatch, setting: str, value: Any
) -> None:
    token = unlogged({})
    assert token is not None, "nothing reads litellm's logging, yet the call is logged"
    release(token)
    monkeypatch.setattr(litellm, setting, value)
    assert unlogged({}) is None


def test_the_cache_litellm_makes_for_gemini_reads_nothing(
    policy: str, litellm: Any, monkeypatch: pytest.MonkeyPatch, handlers_run: dict[str, int]
) -> None:
    """litellm's Vertex AI support makes a ``litellm.Cache`` as it is imported, which puts the
    name "cache" among the callbacks; ``litellm.cache`` stays unset, and calls stay unlogged.

    (For an async call, litellm then still runs its sync success handler in its thread pool,
    which the mark does not reach: a bare ``litellm.acompletion`` does the same.)"""
    monkeypatch.setattr(litellm, "cache", None)
    litellm.Cache(type="local")
    assert "cache" in litellm.success_callback
    assert litellm.cache is None
    assert ChatPolicyRoute(policy=policy).invoke([HumanMessage("hello")]).content == "hi"
    time.sleep(0.2)
    assert handlers_run == {"async": 0, "sync": 0}


def test_the_mark_ends_with_the_call(policy: str, litellm: Any) -> None:
    from litellm._internal_context import is_internal_call

    chat = ChatPolicyRoute(policy=policy)

    async def call() -> bool:
        await chat.ainvoke([HumanMessage("hello")])
        return is_internal_call.get()

    assert arun(call()) is False
    chat.invoke([HumanMessage("hello")])
    assert is_internal_call.get() is False


def test_the_mark_is_released_when_the_call_raises(litellm: Any) -> None:
    from litellm._internal_context import is_internal_call

    seen: list[bool] = []

    def call() -> None:
        with unlogged_call({}):
            seen.append(is_internal_call.get())
            raise RuntimeError("the provider's error")

    with pytest.raises(RuntimeError):
        call()
    assert seen == [True]
    assert is_internal_call.get() is False
