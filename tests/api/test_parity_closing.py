"""A stream a caller leaves the way litellm's streams are left (broken out of a ``for`` loop
and dropped, garbage-collected half read, an async one abandoned without ``aclose``) is
settled: its budget reservation released to what was charged, and one call receipt."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute.testing import FakeProvider, Reply, Usage

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def policy(served: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PR_CLOSING_KEY", "sk-test")
    reply = Reply(text="one two three four five six", usage=Usage(prompt=7, completion=6))
    served.set_default("gpt-4o-mini", reply)
    return f"""
policyroute: 1
name: parity-closing
models:
  m:
    model: openai/gpt-4o-mini
    api_base: {served.openai_base}
    api_key: ${{PR_CLOSING_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: m
budgets:
  - name: daily
    limit_usd: 10
    window: day
store: {{backend: sqlite, path: budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults: {{max_tokens: 16}}
"""


def _calls(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "call"]


def _open_reservations(tmp_path: Path) -> list[Any]:
    with contextlib.closing(sqlite3.connect(tmp_path / "budgets.sqlite3")) as db:
        return db.execute("select * from open_reservations").fetchall()


def _assert_settled(tmp_path: Path) -> None:
    (call,) = _calls(tmp_path)
    assert call["status"] == "cancelled"
    assert call["output_tokens"] > 0  # the partial answer is charged, not only the prompt
    assert _open_reservations(tmp_path) == []


def test_a_stream_broken_out_of_and_dropped_is_settled(policy: str, tmp_path: Path) -> None:
    stream = policyroute.completion(policy=policy, messages=MESSAGES, stream=True)
    for _chunk in stream:
        break
    del stream, _chunk
    gc.collect()
    _assert_settled(tmp_path)


def test_a_stream_collected_half_read_is_settled(policy: str, tmp_path: Path) -> None:
    stream = policyroute.completion(policy=policy, messages=MESSAGES, stream=True)
    next(stream)
    next(stream)
    del stream
    gc.collect()
    _assert_settled(tmp_path)


def test_an_abandoned_async_stream_is_settled(policy: str, tmp_path: Path) -> None:
    async def run() -> None:
        stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
        async for _chunk in stream:
            break
        # Neither aclose() nor the loop's end: the caller just lets go of it.
        del stream
        gc.collect()
        await asyncio.sleep(0.05)

    asyncio.run(run())
    _assert_settled(tmp_path)
