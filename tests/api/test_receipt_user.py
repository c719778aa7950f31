"""The receipt's ``user``: from the call's metadata, else from litellm's ``user`` argument (the
end-user id OpenAI's API takes), which is how a litellm user names who a call is for."""

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
    monkeypatch.setenv("PR_USER_KEY", "sk-test")
    served.set_default("gpt-4o-mini", Reply(text="one two"))
    return f"""
policyroute: 1
name: receipt-user
models:
  m:
    model: openai/gpt-4o-mini
    api_base: {served.openai_base}
    api_key: ${{PR_USER_KEY}}
routes:
  - name: default
    to: m
receipts: {{sink: jsonl, path: receipts.jsonl}}
"""


def _users(tmp_path: Path) -> list[tuple[str, Any]]:
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    return [(r["kind"], r["user"]) for r in map(json.loads, lines)]


def test_the_user_argument_names_the_receipts_user(
    policy: str, served: FakeProvider, tmp_path: Path
) -> None:
    policyroute.completion(policy=policy, messages=MESSAGES, user="alice")
    assert _users(tmp_path) == [("attempt", "alice"), ("call", "alice")]
    # and it still reaches the provider, as litellm sends it
    assert served.requests[-1].body["user"] == "alice"


def test_a_streamed_async_call_names_it_too(policy: str, tmp_path: Path) -> None:
    async def run() -> None:
        stream = await policyroute.acompletion(
            policy=policy, messages=MESSAGES, user="bob", stream=True
        )
        async for _ in stream:
            pass

    asyncio.run(run())
    assert _users(tmp_path) == [("attempt", "bob"), ("call", "bob")]


def test_metadata_names_the_user_before_the_argument(policy: str, tmp_path: Path) -> None:
    policyroute.completion(
        policy=policy, messages=MESSAGES, user="alice", metadata={"user_id": "u-1"}
    )
    assert _users(tmp_path) == [("attempt", "u-1"), ("call", "u-1")]


def test_no_user_anywhere_leaves_it_empty(policy: str, tmp_path: Path) -> None:
    policyroute.completion(policy=policy, messages=MESSAGES)
    assert _users(tmp_path) == [("attempt", None), ("call", None)]
