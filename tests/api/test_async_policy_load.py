"""policyroute.acompletion loads a policy off the event loop.

Reading, validating and compiling a policy file takes tens of milliseconds; on a cache miss
(the first call, or the first after the file changed) acompletion does it in a worker thread,
so the loop's other tasks keep running. Concurrent first calls on one policy share that one
load: one compile, one compiled policy, and a failed load is the same error for each caller.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute import api
from policyroute.errors import PolicyValidationError
from policyroute.policy import loader
from policyroute.policy.compile import CompiledPolicy
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: async-load
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_ASYNC_LOAD_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes:
  - name: {route}
    to: a
receipts: {{sink: none}}
defaults: {{max_tokens: 10, retry: {{attempts: 0}}}}
"""
MESSAGES = [{"role": "user", "content": "hello"}]
# How long a held load waits for the loop's other tasks before it gives up: only reached when
# the load blocks the loop (those tasks cannot run then).
HOLD_LIMIT = 5.0


@pytest.fixture
def fp(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setenv("PR_ASYNC_LOAD_KEY", "sk-async-load")
    provider.reset()
    provider.set_default("*", Reply(text="hi"))
    api.clear_cache()
    yield provider
    api.clear_cache()


class HeldLoads:
    """Stands in for ``load_policy``: each load waits (in whatever thread runs it) until the
    test releases it, and says whether it was released or gave up."""

    def __init__(self, real: Callable[..., CompiledPolicy]) -> None:
        self.real = real
        self.started = threading.Event()
        self.release = threading.Event()
        self.released: list[bool] = []
        self.threads: list[int] = []

    def __call__(self, path: Any, **kwargs: Any) -> CompiledPolicy:
        self.threads.append(threading.get_ident())
        self.started.set()
        self.released.append(self.release.wait(HOLD_LIMIT))
        return self.real(path, **kwargs)

    async def wait_started(self) -> None:
        """Poll, so that the loop keeps running while the load is held."""
        while not self.started.is_set():
            await asyncio.sleep(0.005)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> HeldLoads:
    loads = HeldLoads(loader.load_policy)
    monkeypatch.setattr(loader, "load_policy", loads)
    return loads


def _write(path: Path, fp: FakeProvider, route: str = "default") -> Path:
    path.write_text(POLICY.format(base=fp.openai_base, route=route))
    return path


async def _route(path: Path) -> str:
    response = await policyroute.acompletion(policy=path, messages=MESSAGES)
    return str(response._hidden_params["policyroute"]["route"])


def test_the_loop_keeps_running_while_the_first_load_runs(
    fp: FakeProvider, tmp_path: Path, held: HeldLoads
) -> None:
    path = _write(tmp_path / "p.yaml", fp)

    async def main() -> str:
        call = asyncio.create_task(_route(path))
        # Runs only if the load left the loop free: releasing the load from here.
        await held.wait_started()
        held.release.set()
        return await call

    assert asyncio.run(main()) == "default"
    assert held.released == [True]
    assert threading.get_ident() not in held.threads


def test_the_reload_after_an_edit_runs_off_the_loop_too(
    fp: FakeProvider, tmp_path: Path, held: HeldLoads
) -> None:
    path = _write(tmp_path / "p.yaml", fp, route="before")
    held.release.set()  # the first load goes through at once

    async def main() -> list[str]:
        routes = [await _route(path)]
        held.release.clear()
        held.started.clear()
        _write(path, fp, route="after")
        stamp = os.stat(path).st_mtime_ns + 1_000_000_000  # a new key even on a coarse clock
        os.utime(path, ns=(stamp, stamp))
        call = asyncio.create_task(_route(path))
        await held.wait_started()
        held.release.set()
        routes.append(await call)
        return routes

    assert asyncio.run(main()) == ["before", "after"]
    assert held.released == [True, True]


def test_concurrent_first_calls_share_one_load(
    fp: FakeProvider, tmp_path: Path, held: HeldLoads, compiles: list[str]
) -> None:
    path = _write(tmp_path / "p.yaml", fp)

    async def main() -> list[CompiledPolicy]:
        loads = [asyncio.create_task(api._apolicy_for(path)) for _ in range(8)]
        await held.wait_started()
        await asyncio.sleep(0.05)  # every task is waiting for the load under way now
        held.release.set()
        policies = await asyncio.gather(*loads)
        # And a call afterwards is a cache hit: no load, no compile.
        assert await api._apolicy_for(path) is policies[0]
        return policies

    policies = asyncio.run(main())
    assert len({id(p) for p in policies}) == 1
    assert held.released == [True]
    assert compiles == ["async-load"]


def test_concurrent_calls_complete_on_one_compiled_policy(
    fp: FakeProvider, tmp_path: Path, held: HeldLoads, compiles: list[str]
) -> None:
    path = _write(tmp_path / "p.yaml", fp)

    async def main() -> list[str]:
        calls = [asyncio.create_task(_route(path)) for _ in range(6)]
        await held.wait_started()
        await asyncio.sleep(0.05)
        held.release.set()
        return await asyncio.gather(*calls)

    assert asyncio.run(main()) == ["default"] * 6
    assert held.released == [True]
    assert compiles == ["async-load"]
    assert len(fp.requests) == 6


def test_a_failed_load_is_the_same_error_for_every_waiting_caller(
    fp: FakeProvider, tmp_path: Path, held: HeldLoads
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("policyroute: 1\nname: broken\nroutes:\n  - name: r\n    to: nowhere\n")

    async def main() -> list[BaseException | str]:
        calls = [asyncio.create_task(_route(path)) for _ in range(5)]
        await held.wait_started()
        await asyncio.sleep(0.05)
        held.release.set()
        return await asyncio.gather(*calls, return_exceptions=True)

    errors = asyncio.run(main())
    assert all(isinstance(e, PolicyValidationError) for e in errors)
    assert len({id(e) for e in errors}) == 1
    assert held.released == [True]
    # A failure is not cached: the next call loads again (and fails again, the file unchanged).
    held.started.clear()
    with pytest.raises(PolicyValidationError):
        asyncio.run(_route(path))
    assert len(held.released) == 2


def test_a_cancelled_caller_leaves_the_shared_load_to_the_others(
    fp: FakeProvider, tmp_path: Path, held: HeldLoads, compiles: list[str]
) -> None:
    path = _write(tmp_path / "p.yaml", fp)

    async def main() -> list[CompiledPolicy]:
        first = asyncio.create_task(api._apolicy_for(path))
        others = [asyncio.create_task(api._apolicy_for(path)) for _ in range(3)]
        await held.wait_started()
        await asyncio.sleep(0.05)
        first.cancel()  # the caller that started the load goes away
        held.release.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await asyncio.gather(*others)

    policies = asyncio.run(main())
    assert len({id(p) for p in policies}) == 1
    assert compiles == ["async-load"]


def test_a_missing_file_is_a_policy_error_from_the_worker_thread(
    fp: FakeProvider, tmp_path: Path, held: HeldLoads
) -> None:
    held.release.set()
    with pytest.raises(PolicyValidationError) as caught:
        asyncio.run(_route(tmp_path / "missing.yaml"))
    assert "PR001" in str(caught.value)
    assert threading.get_ident() not in held.threads


def test_a_policy_given_as_text_loads_off_the_loop_too(
    fp: FakeProvider, compiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real = loader.load_policy_text

    def recording(text: str, **kwargs: Any) -> CompiledPolicy:
        threads.append(threading.get_ident())
        return real(text, **kwargs)

    monkeypatch.setattr(loader, "load_policy_text", recording)
    text = POLICY.format(base=fp.openai_base, route="text")

    async def main() -> list[CompiledPolicy]:
        return list(await asyncio.gather(*(api._apolicy_for(text) for _ in range(4))))

    policies = asyncio.run(main())
    assert len({id(p) for p in policies}) == 1
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


def test_a_load_that_cannot_start_fails_its_callers_and_the_next_load_runs(
    fp: FakeProvider, tmp_path: Path, compiles: list[str]
) -> None:
    path = _write(tmp_path / "p.yaml", fp)

    async def without_executor() -> None:
        await asyncio.get_running_loop().shutdown_default_executor()
        await api._apolicy_for(path)

    with pytest.raises(RuntimeError, match="shutdown"):
        asyncio.run(without_executor())
    assert compiles == []
    assert asyncio.run(_route(path)) == "default"  # not left waiting for the failed start
    assert compiles == ["async-load"]
