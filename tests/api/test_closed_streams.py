"""A stream closed by its caller yields nothing more, as a closed generator does: the chunk
read ahead at the call (so that a call failing before its first token raises there) is
dropped with the rest, and the receipt says the call was cancelled."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def policy(served: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PR_CLOSED_KEY", "sk-test")
    served.set_default("gpt-4o-mini", Reply(text="one two three four"))
    return f"""
policyroute: 1
name: closed-streams
models:
  a:
    model: openai/gpt-4o-mini
    api_base: {served.openai_base}
    api_key: ${{PR_CLOSED_KEY}}
routes: [{{name: default, to: a}}]
receipts: {{sink: jsonl, path: receipts.jsonl}}
"""


def _call_status(tmp_path: Path) -> str:
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    (call,) = [r for r in map(json.loads, lines) if r["kind"] == "call"]
    return str(call["status"])


def test_a_stream_closed_before_its_first_read_yields_nothing(policy: str, tmp_path: Path) -> None:
    stream = policyroute.completion(policy=policy, messages=MESSAGES, stream=True)
    stream.close()
    assert list(stream) == []
    assert _call_status(tmp_path) == "cancelled"


def test_a_stream_left_by_its_with_block_yields_nothing(policy: str, tmp_path: Path) -> None:
    with policyroute.completion(policy=policy, messages=MESSAGES, stream=True) as stream:
        pass
    assert next(stream, None) is None
    assert _call_status(tmp_path) == "cancelled"


def test_an_async_stream_closed_before_its_first_read_yields_nothing(
    policy: str, tmp_path: Path
) -> None:
    async def run() -> list[Any]:
        stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
        await stream.aclose()
        return [chunk async for chunk in stream]

    assert asyncio.run(run()) == []
    assert _call_status(tmp_path) == "cancelled"
