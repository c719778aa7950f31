"""What policyroute.completion's calls share, and when they stop sharing it.

Every call on one policy and accounting runs on one executor. A policy is loaded again when
its file changes or a ``${VAR}`` it references takes another value; without an accounting,
each working directory has its own (the policy's store and receipt paths are relative to it),
and a default accounting that was closed is replaced. Callers missing the cache at once, in
threads or on event loops, share one load; a cache hit never waits for another policy's
executor to be built.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute import _shared_cache, accounting, api
from policyroute.execution.hooks import NullAccounting
from policyroute.policy import loader
from policyroute.policy.compile import CompiledPolicy
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: {name}
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_SHARED_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes:
  - name: default
    to: a
receipts: {{sink: jsonl, path: receipts/calls.jsonl}}
defaults: {{max_tokens: 10, retry: {{attempts: 0}}}}
"""
MESSAGES = [{"role": "user", "content": "hello"}]
# How long a held load waits to be released before it gives up.
HOLD_LIMIT = 5.0


@pytest.fixture
def fp(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_SHARED_KEY", "sk-first")
    provider.reset()
    provider.set_default("*", Reply(text="hi"))
    api.clear_cache()
    yield provider
    api.clear_cache()
    accounting._clear_default_cache()


@pytest.fixture
def path(fp: FakeProvider, tmp_path: Path) -> Path:
    written = tmp_path / "policy.yaml"
    written.write_text(POLICY.format(name="shared", base=fp.openai_base))
    return written


class Held:
    """Stands in for a function: each call waits (in whatever thread runs it) until the test
    releases it, then calls the real one."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.started.set()
        assert self.release.wait(HOLD_LIMIT), "held past the test's limit"
        return self.real(*args, **kwargs)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Held:
    loads = Held(loader.load_policy)
    monkeypatch.setattr(loader, "load_policy", loads)
    return loads


def _authorization(fp: FakeProvider) -> str:
    headers = {name.lower(): value for name, value in fp.requests[-1].headers.items()}
    return headers["authorization"]


def _receipts(directory: Path) -> list[dict[str, Any]]:
    lines = (directory / "receipts" / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# --------------------------------------------------------------------------- keys


def test_a_changed_variable_loads_the_policy_again(
    fp: FakeProvider, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policyroute.completion(policy=path, messages=MESSAGES)
    assert _authorization(fp) == "Bearer sk-first"
    first = api._executor_for(path, None)
    monkeypatch.setenv("PR_SHARED_KEY", "sk-rotated")
    policyroute.completion(policy=path, messages=MESSAGES)
    assert _authorization(fp) == "Bearer sk-rotated"
    # A new policy, so a new executor: its breakers start closed.
    assert api._executor_for(path, None) is not first


@pytest.mark.asyncio
async def test_a_changed_variable_loads_the_policy_again_for_async_calls(
    fp: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = POLICY.format(name="as-text", base=fp.openai_base)
    await policyroute.acompletion(policy=text, messages=MESSAGES)
    monkeypatch.setenv("PR_SHARED_KEY", "sk-rotated")
    await policyroute.acompletion(policy=text, messages=MESSAGES)
    assert _authorization(fp) == "Bearer sk-rotated"
    monkeypatch.delenv("PR_SHARED_KEY")
    unset = await api._apolicy_for(text)
    assert unset.spec.models["a"].api_key is not None
    assert unset.spec.models["a"].api_key.reveal() is None


def test_an_unchanged_policy_is_one_executor_whatever_the_path_spelling(
    fp: FakeProvider, path: Path, compiles: list[str]
) -> None:
    first = api._executor_for(path, None)
    assert api._executor_for("policy.yaml", None) is first
    assert api._executor_for(f"./{path.name}", None) is first
    assert compiles == ["shared"]


def test_default_accounting_follows_the_working_directory(
    fp: FakeProvider, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policyroute.completion(policy=path, messages=MESSAGES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    policyroute.completion(policy=path, messages=MESSAGES)
    # Each directory's receipts hold its own call: the relative receipt path is read against
    # the working directory of the call.
    assert [r["kind"] for r in _receipts(tmp_path)] == ["attempt", "call"]
    assert [r["kind"] for r in _receipts(elsewhere)] == ["attempt", "call"]
    in_elsewhere = api._executor_for(path, None)
    monkeypatch.chdir(tmp_path)
    assert api._executor_for(path, None) is not in_elsewhere


def test_a_closed_default_accounting_gets_a_new_executor(fp: FakeProvider, path: Path) -> None:
    policyroute.completion(policy=path, messages=MESSAGES)
    before = api._executor_for(path, None)
    accounting._clear_default_cache()  # closes it
    response = policyroute.completion(policy=path, messages=MESSAGES)
    assert response.choices[0].message.content == "hi"
    assert api._executor_for(path, None) is not before
    assert len(_receipts(Path.cwd())) == 4


def test_a_given_accounting_is_the_callers_even_closed(fp: FakeProvider, path: Path) -> None:
    given = accounting.PolicyAccounting.from_policy(api._policy_for(path))
    first = api._executor_for(path, given)
    given.close()
    assert api._executor_for(path, given) is first


# --------------------------------------------------------------------------- shared loads


def test_sync_callers_missing_at_once_share_one_load(
    fp: FakeProvider, path: Path, held: Held, compiles: list[str]
) -> None:
    policies: list[CompiledPolicy] = []
    threads = [
        threading.Thread(target=lambda: policies.append(api._policy_for(path))) for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    assert held.started.wait(HOLD_LIMIT)
    threading.Event().wait(0.05)  # every thread is waiting for the load under way now
    held.release.set()
    for thread in threads:
        thread.join()
    assert len(policies) == 5
    assert len({id(p) for p in policies}) == 1
    assert held.calls == 1
    assert compiles == ["shared"]


def test_a_sync_call_joins_the_load_started_for_async_callers(
    fp: FakeProvider, path: Path, held: Held, compiles: list[str]
) -> None:
    from_sync: list[CompiledPolicy] = []

    async def main() -> CompiledPolicy:
        loading = asyncio.create_task(api._apolicy_for(path))
        while not held.started.is_set():
            await asyncio.sleep(0.005)
        thread = threading.Thread(target=lambda: from_sync.append(api._policy_for(path)))
        thread.start()
        await asyncio.sleep(0.05)  # the thread is waiting for the load under way now
        held.release.set()
        policy = await loading
        await asyncio.to_thread(thread.join)
        return policy

    from_async = asyncio.run(main())
    assert from_sync == [from_async]
    assert held.calls == 1
    assert compiles == ["shared"]


def test_an_async_call_joins_the_load_a_sync_call_started(
    fp: FakeProvider, path: Path, held: Held, compiles: list[str]
) -> None:
    from_sync: list[CompiledPolicy] = []
    thread = threading.Thread(target=lambda: from_sync.append(api._policy_for(path)))
    thread.start()
    assert held.started.wait(HOLD_LIMIT)

    async def main() -> CompiledPolicy:
        loading = asyncio.create_task(api._apolicy_for(path))
        await asyncio.sleep(0.05)  # the task is waiting for the load under way now
        held.release.set()
        return await loading

    from_async = asyncio.run(main())
    thread.join()
    assert from_sync == [from_async]
    assert held.calls == 1
    assert compiles == ["shared"]


def test_a_failed_sync_load_is_the_same_error_for_every_waiting_thread(
    fp: FakeProvider, tmp_path: Path, held: Held
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("policyroute: 1\nname: broken\nroutes:\n  - name: r\n    to: nowhere\n")
    errors: list[BaseException] = []

    def load() -> None:
        try:
            api._policy_for(broken)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert held.started.wait(HOLD_LIMIT)
    threading.Event().wait(0.05)
    held.release.set()
    for thread in threads:
        thread.join()
    assert len(errors) == 3
    assert len({id(e) for e in errors}) == 1
    assert held.calls == 1


def test_a_hit_does_not_wait_for_another_executor_being_built(
    fp: FakeProvider, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = api._executor_for(path, None)
    other = tmp_path / "other.yaml"
    other.write_text(POLICY.format(name="other", base=fp.openai_base))
    opening = Held(accounting.default_accounting)
    monkeypatch.setattr(accounting, "default_accounting", opening)
    building = threading.Thread(target=api._executor_for, args=(other, None))
    building.start()
    assert opening.started.wait(HOLD_LIMIT)
    hits: list[object] = []
    hit = threading.Thread(target=lambda: hits.append(api._executor_for(path, None)))
    hit.start()
    hit.join(2.0)
    finished_while_held = not hit.is_alive()
    opening.release.set()
    hit.join()
    building.join()
    assert finished_while_held
    assert hits == [ready]


def test_the_cache_is_bounded(fp: FakeProvider, path: Path) -> None:
    off = [NullAccounting() for _ in range(_shared_cache.CACHE_SIZE + 1)]
    first = api._executor_for(path, off[0])
    for acct in off[1:]:
        api._executor_for(path, acct)
    # The least recently used executor made room.
    assert api._executor_for(path, off[0]) is not first


def test_a_sync_caller_runs_a_load_still_queued_in_the_loops_executor(
    fp: FakeProvider, path: Path, compiles: list[str]
) -> None:
    # The loop's only worker is taken by a sync caller that misses after an async caller
    # queued its load behind it: waiting for that load would wait forever.
    go = threading.Event()

    def sync_caller() -> CompiledPolicy:
        assert go.wait(HOLD_LIMIT)
        return api._policy_for(path)

    async def main() -> tuple[CompiledPolicy, CompiledPolicy]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        in_worker = loop.run_in_executor(None, sync_caller)
        on_loop = asyncio.create_task(api._apolicy_for(path))
        await asyncio.sleep(0.05)  # the async caller's load is queued behind sync_caller
        go.set()
        return await asyncio.wait_for(in_worker, HOLD_LIMIT), await on_loop

    from_sync, from_async = asyncio.run(main())
    assert from_sync is from_async
    assert compiles == ["shared"]
