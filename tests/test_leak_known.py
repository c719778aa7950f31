"""Retention the soak benchmark (bench/bench_soak.py) finds in modules owned elsewhere.

Each test states what should hold and is marked ``xfail(strict=True)`` until its owner fixes
the cause given in ``reason``: the fix turns it into an unexpected pass, which fails the run,
and the marker is then removed.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

import policyroute
from policyroute import accounting
from policyroute.api import clear_cache
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.testing import FakeProvider, Reply

_PROC_FD = Path("/proc/self/fd")

POLICY = """
policyroute: 1
name: leak-known
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_KNOWN_KEY}}",
       price: {{input_per_mtok: 10, output_per_mtok: 20}}}}
  b: {{model: openai/fake-b, api_base: "{base}", api_key: "${{PR_KNOWN_KEY}}",
       price: {{input_per_mtok: 5, output_per_mtok: 10}}}}
groups:
  cheap: {{strategy: ordered, models: [b]}}
routes: [{{name: default, to: a}}]
budgets:
  - name: total
    limit_usd: {limit}
    window: day
    on_exceed: {{downgrade: cheap}}
store: {{backend: sqlite, path: "{dir}/budgets.sqlite3"}}
receipts: {{sink: jsonl, path: "{dir}/receipts.jsonl"}}
defaults: {{max_tokens: 10}}
"""


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setenv("PR_KNOWN_KEY", "sk-known-0123456789")
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="hi"))
        yield fp
    clear_cache()
    accounting._clear_default_cache()


def _write(path: Path, fp: FakeProvider, limit: float) -> str:
    path.write_text(
        POLICY.format(base=fp.openai_base, limit=limit, dir=path.parent), encoding="utf-8"
    )
    return str(path)


@pytest.mark.skipif(not _PROC_FD.is_dir(), reason="counts descriptors in /proc/self/fd")
def test_threads_that_ended_leave_no_store_connection_open(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "budgets.sqlite3")
    try:
        store.state("total/%2A/day", now=time.time())
        before = len(os.listdir(_PROC_FD))
        for _ in range(10):
            thread = threading.Thread(
                target=store.state, args=("total/%2A/day",), kwargs={"now": time.time()}
            )
            thread.start()
            thread.join()
        gc.collect()
        assert len(os.listdir(_PROC_FD)) - before <= 2
    finally:
        store.close()


@pytest.mark.xfail(
    strict=True,
    reason="default_accounting (policyroute/accounting.py) caches one PolicyAccounting per"
    " policy content hash and working directory in _cache, never evicted nor closed: each"
    " edited version of a policy file leaves an accounting with its SQLite connections and"
    " its receipt file open (policyroute._shared_cache drops the executor, not it)",
)
def test_edited_policy_versions_do_not_keep_their_accountings_open(
    provider: FakeProvider, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"

    async def call(ref: str) -> None:
        await policyroute.acompletion(policy=ref, messages=[{"role": "user", "content": "hi"}])

    for version in range(6):
        asyncio.run(call(_write(path, provider, limit=100 + version)))
    assert len([a for a in accounting._cache.values() if not a.closed]) <= 2
