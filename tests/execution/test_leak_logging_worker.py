"""Calls made in one ``asyncio.run`` after another do not pile up litellm's logging work.

litellm queues the logging of each async call (its success and failure handlers, and with them
every callback a user registered) on one process-wide worker, bound to the loop of the last
call. A loop that ends right after its calls cancels that worker before it ran them; the next
loop takes them over and ends the same way, so each ``asyncio.run`` added its calls' logging
(the request and the response with it) to a backlog that never ran. policyroute runs the
ending loop's logging work before the loop closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import policyroute
from policyroute._lazy import import_litellm
from policyroute.api import clear_cache
from policyroute.execution.loop_cleanup import close_litellm_clients_with_loop
from policyroute.testing import FakeProvider, Reply

POLICY = """
policyroute: 1
name: leak-logging
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_LEAK_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes: [{{name: default, to: a}}]
receipts: {{sink: none}}
defaults: {{max_tokens: 10}}
"""


def _worker() -> Any:
    import_litellm()
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

    return GLOBAL_LOGGING_WORKER


def _backlog(worker: Any) -> int:
    """Logging work queued, or taken off the queue but never started."""
    queue = worker._queue
    return (0 if queue is None else queue.qsize()) + len(worker._unstarted_dequeued_tasks())


@pytest.fixture
def policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[str]:
    monkeypatch.setenv("PR_LEAK_KEY", "sk-leak-0123456789")
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="hi"))
        path = tmp_path / "policy.yaml"
        path.write_text(POLICY.format(base=fp.openai_base), encoding="utf-8")
        yield str(path)
    clear_cache()


def test_logging_queued_on_an_ending_loop_runs_before_it_closes() -> None:
    worker = _worker()
    ran: list[int] = []

    async def logged(i: int) -> None:
        ran.append(i)

    async def call(i: int) -> None:
        await close_litellm_clients_with_loop()
        worker.ensure_initialized_and_enqueue(logged(i))

    for i in range(3):
        asyncio.run(call(i))
        assert ran == list(range(i + 1))
        assert _backlog(worker) == 0


def test_one_asyncio_run_per_call_leaves_no_logging_backlog(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker()
    # A callback registered with litellm: without one, a unary call leaves litellm no
    # logging to queue (policyroute.execution.unlogged).
    from litellm.integrations.custom_logger import CustomLogger

    logged: list[bool] = []

    class Logger(CustomLogger):  # type: ignore[misc]
        async def async_log_success_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            logged.append(bool(kwargs.get("stream")))

    litellm = import_litellm()
    for name in ("callbacks", "success_callback", "_async_success_callback", "input_callback"):
        monkeypatch.setattr(litellm, name, list(getattr(litellm, name)))
    litellm.callbacks.append(Logger())

    async def call(stream: bool) -> None:
        response = await policyroute.acompletion(
            policy=policy, messages=[{"role": "user", "content": "hello"}], stream=stream
        )
        if stream:
            async for _ in response:
                pass

    for i in range(6):
        asyncio.run(call(stream=i % 2 == 1))
        assert _backlog(worker) == 0, f"after call {i + 1}"
    assert logged == [False, True] * 3


def test_a_failing_or_hung_logging_callback_does_not_hold_the_loop_end(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("policyroute.execution.loop_cleanup._LOGGING_SECONDS", 0.05)
    worker = _worker()
    ended: list[str] = []

    async def fails() -> None:
        raise RuntimeError("a broken callback")

    async def hangs() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            ended.append("cancelled")

    async def call() -> None:
        await close_litellm_clients_with_loop()
        worker.ensure_initialized_and_enqueue(fails())
        worker.ensure_initialized_and_enqueue(hangs())

    with caplog.at_level("ERROR", logger="asyncio"):
        asyncio.run(call())
    assert ended == ["cancelled"]
    assert _backlog(worker) == 0
    assert not [r for r in caplog.records if r.name == "asyncio"]
