"""A policy file edited while the process runs: each version's default accounting lives as long
as something uses it, and no longer.

Loading a new version of a file drops the older versions from the shared cache, with their
executors; the default accounting of an old version then closes its budget store and receipt
sink as soon as no executor, chat model or call in flight holds it. Open descriptors and live
accountings stay bounded however often the file is edited, and a call (or a model) that
started on an old version still settles its budget and writes its receipts.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest
from langchain_core.messages import AIMessageChunk

import policyroute
from policyroute import _shared_cache, accounting
from policyroute.accounting import PolicyAccounting
from policyroute.api import clear_cache
from policyroute.errors import BudgetStoreError
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(60)

_PROC_FD = Path("/proc/self/fd")

# Relative store and receipt paths: the default accounting reads them against the working
# directory, as a service does.
POLICY = """
policyroute: 1
name: versions
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_VERSIONS_KEY}}",
       price: {{input_per_mtok: 10, output_per_mtok: 20}}}}
routes: [{{name: default, to: a}}]
budgets:
  - {{name: total, limit_usd: {limit}, window: day}}
store: {{backend: sqlite, path: budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults: {{max_tokens: 10, retry: {{attempts: 0}}}}
"""
MESSAGES = [{"role": "user", "content": "hi"}]
VERSIONS = 8


@pytest.fixture
def fp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeProvider]:
    monkeypatch.setenv("PR_VERSIONS_KEY", "sk-versions-0123456789")
    monkeypatch.chdir(tmp_path)
    clear_cache()
    # An accounting an earlier test left to the garbage collector would count as a version.
    accounting._clear_default_cache()
    with FakeProvider() as provider:
        provider.set_default("*", Reply(text="hello"))
        yield provider
    clear_cache()
    accounting._clear_default_cache()


def write(fp: FakeProvider, version: int) -> str:
    """Write version ``version`` of the policy (another budget limit); return its path."""
    path = Path("policy.yaml")
    path.write_text(POLICY.format(base=fp.openai_base, limit=100 + version), encoding="utf-8")
    return str(path)


def current_accounting(path: str) -> PolicyAccounting:
    acct = _shared_cache.executor_for(path, None).accounting
    assert isinstance(acct, PolicyAccounting)
    return acct


def open_fds() -> int:
    return len(os.listdir(_PROC_FD))


def receipts() -> list[dict[str, Any]]:
    text = Path("receipts.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def calls_on(version_hash: str) -> list[dict[str, Any]]:
    return [r for r in receipts() if r["kind"] == "call" and r["policy_hash"] == version_hash]


def assert_settled(version_hash: str, count: int) -> None:
    """``count`` answered calls on the version, each attempt charged to the budget."""
    assert [r["status"] for r in calls_on(version_hash)] == ["ok"] * count
    attempts = [
        r for r in receipts() if r["kind"] == "attempt" and r["policy_hash"] == version_hash
    ]
    assert len(attempts) == count
    for attempt in attempts:
        assert "budget_error" not in attempt
        assert [b["budget"] for b in attempt["budgets"]] == ["total"]


@pytest.mark.skipif(not _PROC_FD.is_dir(), reason="counts descriptors in /proc/self/fd")
def test_editing_the_policy_keeps_descriptors_and_accountings_bounded(fp: FakeProvider) -> None:
    seen: list[weakref.ref[PolicyAccounting]] = []
    warm = 0
    for version in range(VERSIONS):
        path = write(fp, version)
        policyroute.completion(policy=path, messages=MESSAGES)
        asyncio.run(policyroute.acompletion(policy=path, messages=MESSAGES))
        ChatPolicyRoute(policy=path).invoke("hi")
        seen.append(weakref.ref(current_accounting(path)))
        if version == 1:
            # After a first edit: litellm's clients and the receipt file are open by now.
            warm = open_fds()
    # No garbage collection: the old versions go as their last reference does.
    assert open_fds() - warm <= 2
    assert [ref() is not None for ref in seen] == [False] * (VERSIONS - 1) + [True]
    assert len(accounting._cache) == 1
    # Every call of every version was written and charged by its own accounting.
    assert len([r for r in receipts() if r["kind"] == "call"]) == 3 * VERSIONS


def test_a_call_in_flight_across_an_edit_settles_and_writes_its_receipt(
    fp: FakeProvider,
) -> None:
    path = write(fp, 0)
    old = current_accounting(path)
    old_hash = old.policy.content_hash
    old_ref = weakref.ref(old)
    del old

    async def scenario() -> None:
        fp.script("fake-a", Reply(text="slow answer", delay=0.3))
        slow = asyncio.ensure_future(policyroute.acompletion(policy=path, messages=MESSAGES))
        fp.script("fake-a", Reply(text="one two three four five", chunk_delay=0.05))
        stream = await policyroute.acompletion(policy=path, messages=MESSAGES, stream=True)
        while len(fp.requests_for("fake-a")) < 2:
            await asyncio.sleep(0.01)
        # Edited while both calls run; calls on the new version drop the old one's executor.
        write(fp, 1)
        await policyroute.acompletion(policy=path, messages=MESSAGES)
        assert current_accounting(path).policy.content_hash != old_hash
        gc.collect()
        kept = old_ref()
        assert kept is not None
        assert not kept.closed
        del kept
        assert await slow
        assert "".join([c.choices[0].delta.content or "" async for c in stream])
        del slow, stream

    asyncio.run(scenario())
    gc.collect()
    assert old_ref() is None
    assert_settled(old_hash, 2)


def test_a_chat_model_kept_across_edits_keeps_its_accounting_open(fp: FakeProvider) -> None:
    path = write(fp, 0)
    llm = ChatPolicyRoute(policy=path)
    assert llm.invoke("hi").content
    for version in range(1, 4):
        write(fp, version)
        policyroute.completion(policy=path, messages=MESSAGES)
        gc.collect()
        # Built on version 0, it goes on routing and charging by it.
        assert llm.invoke("hi").content

    async def streamed() -> str:
        chunks = [c async for c in llm.astream("hi")]
        assert all(isinstance(c, AIMessageChunk) for c in chunks)
        return "".join(str(c.content) for c in chunks)

    assert asyncio.run(streamed())
    acct = llm.executor.accounting
    assert isinstance(acct, PolicyAccounting)
    assert not acct.closed
    assert_settled(llm.compiled_policy.content_hash, 5)


def test_a_closed_default_accounting_is_replaced_and_a_dropped_one_closes(
    fp: FakeProvider,
) -> None:
    path = write(fp, 0)
    policyroute.completion(policy=path, messages=MESSAGES)
    first = current_accounting(path)
    first.close()
    policyroute.completion(policy=path, messages=MESSAGES)
    second = current_accounting(path)
    assert second is not first
    assert not second.closed
    store = second.guard.store  # type: ignore[union-attr]
    del first, second
    before = open_fds()
    clear_cache()  # nothing holds the accounting any more: it closes its store and sink
    assert not accounting._cache
    with pytest.raises(BudgetStoreError, match="closed"):
        store.state("total/%2A/day", now=time.time())
    if _PROC_FD.is_dir():
        assert open_fds() < before


def test_an_edit_drops_only_the_older_versions_of_that_file(fp: FakeProvider) -> None:
    path = write(fp, 0)
    other = Path("other.yaml")
    other.write_text(POLICY.format(base=fp.openai_base, limit=50), encoding="utf-8")
    text = POLICY.format(base=fp.openai_base, limit=60)
    kept = [_shared_cache.executor_for(ref, None) for ref in (str(other), text)]
    old = _shared_cache.executor_for(path, None)
    write(fp, 1)
    new = _shared_cache.executor_for(path, None)
    assert new is not old
    # Another file and a policy given as text keep their executors (and accountings).
    assert [_shared_cache.executor_for(ref, None) for ref in (str(other), text)] == kept
    assert old.accounting is not new.accounting
    assert not old.accounting.closed  # type: ignore[attr-defined]  # still held here
