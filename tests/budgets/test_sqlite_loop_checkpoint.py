"""A settle that checkpoints the SQLite WAL on the event loop's behalf still settles when it
runs on past the caller's task (as settles do, so a cancellation cannot cut them short)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from policyroute.accounting import _clear_default_cache
from policyroute.api import clear_cache
from policyroute.budgets.stores import sqlite as sqlite_store
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, Usage

POLICY = """
policyroute: 1
name: checkpoint
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_CHECKPOINT_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: default
    to: a
budgets:
  - name: daily
    limit_usd: 10
    window: day
store: {{backend: sqlite, path: {tmp}/budget.db}}
receipts: {{sink: jsonl, path: {tmp}/receipts.jsonl}}
defaults: {{max_tokens: 10}}
"""


@pytest.fixture
def fp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setenv("PR_CHECKPOINT_KEY", "sk-checkpoint-0123456789")
    with FakeProvider() as provider:
        provider.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
        yield provider
    clear_cache()
    _clear_default_cache()


def test_settles_that_checkpoint_are_settled(
    fp: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint after every commit made on the loop: each settle then awaits one.
    monkeypatch.setattr(sqlite_store, "_LOOP_CHECKPOINT_EVERY", 1)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(base=fp.openai_base, tmp=tmp_path))
    llm = ChatPolicyRoute(policy=str(policy))

    async def calls() -> list[str]:
        return [str((await llm.ainvoke("hello")).content) for _ in range(4)]

    assert asyncio.run(calls()) == ["hi"] * 4
    records = [json.loads(line) for line in (tmp_path / "receipts.jsonl").read_text().splitlines()]
    attempts = [r for r in records if r["kind"] == "attempt"]
    assert len(attempts) == 4
    assert [r.get("budget_error") for r in attempts] == [None] * 4
    store = SQLiteStore(tmp_path / "budget.db")
    try:
        (line,) = store.scan("daily/", now=time.time())
    finally:
        store.close()
    assert line.reserved == 0
    assert line.spent > 0
