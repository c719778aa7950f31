"""A downgraded call's record in the budget guard goes when the call ends, however it ends.

The guard remembers, per request id, the targets a call was downgraded to (so that a target
refused again is not downgraded to twice, and a downgrade to a route charges that route).
``PolicyAccounting.finish`` / ``afinish`` tell it when the call is over: answered, failed,
refused, cancelled, or a stream closed early or dropped.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

import policyroute
from policyroute import _shared_cache, accounting
from policyroute.api import clear_cache
from policyroute.budgets.guard import BudgetGuard
from policyroute.errors import BudgetExceeded, ProviderError
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(60)

# The budget is 5 USD. max_tokens 400,000 is a worst case of 8 USD on a, over it, and of 4 USD
# on b, within it: downgraded to b and answered. 1,000,000 is over on both: downgraded to b,
# then refused there ("already downgraded once").
POLICY = """
policyroute: 1
name: leak-downgrades
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_DOWNGRADES_KEY}}",
       price: {{input_per_mtok: 10, output_per_mtok: 20}}}}
  b: {{model: openai/fake-b, api_base: "{base}", api_key: "${{PR_DOWNGRADES_KEY}}",
       price: {{input_per_mtok: 5, output_per_mtok: 10}}}}
groups:
  cheap: {{strategy: ordered, models: [b]}}
routes: [{{name: default, to: a}}]
budgets:
  - name: total
    limit_usd: 5
    window: day
    on_exceed: {{downgrade: cheap}}
store: {{backend: sqlite, path: "{dir}/budgets.sqlite3"}}
receipts: {{sink: jsonl, path: "{dir}/receipts.jsonl"}}
defaults: {{max_tokens: 10, retry: {{attempts: 0}}}}
"""
DOWNGRADED = 400_000
REFUSED = 1_000_000
MESSAGES = [{"role": "user", "content": "hi"}]
N = 3


@pytest.fixture
def fp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setenv("PR_DOWNGRADES_KEY", "sk-downgrades-0123456789")
    with FakeProvider() as provider:
        provider.set_default("*", Reply(text="hello there"))
        yield provider
    clear_cache()
    accounting._clear_default_cache()


@pytest.fixture
def path(fp: FakeProvider, tmp_path: Path) -> str:
    written = tmp_path / "policy.yaml"
    written.write_text(POLICY.format(base=fp.openai_base, dir=tmp_path), encoding="utf-8")
    return str(written)


def guard_of(path: str) -> BudgetGuard:
    guard = _shared_cache.executor_for(path, None).accounting.guard  # type: ignore[attr-defined]
    assert isinstance(guard, BudgetGuard)
    return guard


def downgraded_calls(path: str) -> int:
    """Call receipts of calls that ended on b (the downgrade target)."""
    lines = Path(path).with_name("receipts.jsonl").read_text(encoding="utf-8").splitlines()
    calls = [json.loads(line) for line in lines]
    return sum(r["kind"] == "call" and r.get("deployment") == "b" for r in calls)


def test_sync_calls_answered_leave_no_record(fp: FakeProvider, path: str) -> None:
    for _ in range(N):
        policyroute.completion(policy=path, messages=MESSAGES, max_tokens=DOWNGRADED)
    assert fp.attempts("fake-b") == N
    assert downgraded_calls(path) == N
    assert len(guard_of(path)._downgrades) == 0


def test_async_calls_answered_leave_no_record(fp: FakeProvider, path: str) -> None:
    async def calls() -> None:
        for _ in range(N):
            await policyroute.acompletion(policy=path, messages=MESSAGES, max_tokens=DOWNGRADED)

    asyncio.run(calls())
    assert fp.attempts("fake-b") == N
    assert len(guard_of(path)._downgrades) == 0


def test_streams_read_closed_or_dropped_leave_no_record(fp: FakeProvider, path: str) -> None:
    fp.set_default("fake-b", Reply(text="one two three four five six"))
    whole = policyroute.completion(
        policy=path, messages=MESSAGES, max_tokens=DOWNGRADED, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in whole)
    closed = policyroute.completion(
        policy=path, messages=MESSAGES, max_tokens=DOWNGRADED, stream=True
    )
    next(closed)
    closed.close()
    dropped: Any = policyroute.completion(
        policy=path, messages=MESSAGES, max_tokens=DOWNGRADED, stream=True
    )
    next(dropped)
    del dropped
    gc.collect()

    async def astreams() -> None:
        read = await policyroute.acompletion(
            policy=path, messages=MESSAGES, max_tokens=DOWNGRADED, stream=True
        )
        assert [c async for c in read]
        shut = await policyroute.acompletion(
            policy=path, messages=MESSAGES, max_tokens=DOWNGRADED, stream=True
        )
        await shut.__anext__()
        await shut.aclose()

    asyncio.run(astreams())
    assert fp.attempts("fake-b") == 5
    assert len(guard_of(path)._downgrades) == 0


def test_failed_refused_and_cancelled_calls_leave_no_record(fp: FakeProvider, path: str) -> None:
    fp.script("fake-b", *[Fault.status(400) for _ in range(N)])
    for _ in range(N):
        with pytest.raises(ProviderError):
            policyroute.completion(policy=path, messages=MESSAGES, max_tokens=DOWNGRADED)
    for _ in range(N):
        with pytest.raises(BudgetExceeded, match="already downgraded once"):
            policyroute.completion(policy=path, messages=MESSAGES, max_tokens=REFUSED)

    async def cancelled() -> None:
        fp.script("fake-b", Reply(text="late", delay=2.0))
        task = asyncio.ensure_future(
            policyroute.acompletion(policy=path, messages=MESSAGES, max_tokens=DOWNGRADED)
        )
        while not fp.requests_for("fake-b")[N:]:
            await asyncio.sleep(0.01)
        # In flight on b: the guard still knows it was downgraded.
        assert len(guard_of(path)._downgrades) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert len(guard_of(path)._downgrades) == 0


def test_forget_call_is_a_no_op_for_unknown_calls(fp: FakeProvider, path: str) -> None:
    guard = guard_of(path)
    guard.forget_call("never-seen")
    assert guard._first_downgrade("r1", "cheap")
    guard.forget_call("never-seen")
    assert not guard._first_downgrade("r1", "cheap")  # still remembered
    guard.forget_call("r1")
    assert len(guard._downgrades) == 0
