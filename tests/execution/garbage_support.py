"""Calls as a user makes them (ChatPolicyRoute, policyroute.completion), against a fake
provider answering garbage, with a SQLite budget store and JSONL receipts to inspect after."""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("GARBAGE_TEST_KEY", "sk-test")

from exec_support import arun

from policyroute import api
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider

POLICY = """
policyroute: 1
name: {name}
models:
  a:
    model: {wire}/a
    api_base: {base}
    api_key: ${{GARBAGE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
  b:
    model: {wire}/b
    api_base: {base}
    api_key: ${{GARBAGE_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
budgets:
  - name: daily
    limit_usd: 100
    window: day
store: {{backend: sqlite, path: {tmp}/budget.db}}
receipts: {{sink: jsonl, path: {tmp}/receipts.jsonl}}
routes:
  - name: default
    to: [a, b]
defaults:
  max_tokens: 50
  retry: {{attempts: 0}}
  timeout: {timeout}
  first_token_timeout: {first_token}
  idle_timeout: {idle}
"""
NON_STREAMING = ["invoke", "ainvoke", "completion", "acompletion"]
STREAMING = ["stream", "astream", "completion_stream"]
ALL_MODES = NON_STREAMING + STREAMING
_names = itertools.count()


@dataclass
class Seen:
    """What one call gave its caller, and what it left behind."""

    text: str | None
    error: BaseException | None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    reserved: Decimal = Decimal(0)
    spent: Decimal = Decimal(0)
    seconds: float = 0.0

    @property
    def attempt_summary(self) -> list[tuple[str, str, str | None]]:
        return [(r["deployment"], r["status"], r["error_class"]) for r in self.attempts]

    @property
    def call_summary(self) -> list[tuple[str, str | None]]:
        return [(r["status"], r["error_class"]) for r in self.calls]


def call(
    fp: FakeProvider,
    tmp_path: Path,
    mode: str,
    *,
    wire: str = "openai",
    timeout: str = "5s",
    first_token: str = "2s",
    idle: str = "1s",
) -> Seen:
    """One call of ``hello`` in ``mode`` through a fresh policy routing to ``[a, b]``."""
    folder = tmp_path / f"call{next(_names)}"
    folder.mkdir()
    base = fp.openai_base if wire == "openai" else fp.anthropic_base
    text = POLICY.format(
        name=f"garbage-{folder.name}",
        wire=wire,
        base=base,
        tmp=folder,
        timeout=timeout,
        first_token=first_token,
        idle=idle,
    )
    started = time.monotonic()
    answer: str | None = None
    error: BaseException | None = None
    try:
        answer = _run(text, mode)
    except Exception as exc:
        error = exc
    seen = Seen(answer, error, seconds=time.monotonic() - started)
    receipts = folder / "receipts.jsonl"
    if receipts.exists():
        for record in map(json.loads, receipts.read_text().splitlines()):
            (seen.attempts if record["kind"] == "attempt" else seen.calls).append(record)
    store = SQLiteStore(folder / "budget.db")
    try:
        for line in store.scan("daily/", now=time.time()):
            seen.reserved += line.reserved
            seen.spent += line.spent
    finally:
        store.close()
    return seen


def _run(policy: str, mode: str) -> str:
    messages = [{"role": "user", "content": "hello"}]
    if mode in ("invoke", "ainvoke", "stream", "astream"):
        llm = ChatPolicyRoute(policy=policy)
        if mode == "invoke":
            return str(llm.invoke("hello").content)
        if mode == "ainvoke":
            return str(arun(llm.ainvoke("hello")).content)
        if mode == "stream":
            return "".join(str(c.content) for c in llm.stream("hello"))

        async def chunks() -> str:
            return "".join([str(c.content) async for c in llm.astream("hello")])

        return arun(chunks())
    api.clear_cache()
    if mode == "completion":
        return str(api.completion(policy=policy, messages=messages).choices[0].message.content)
    if mode == "acompletion":
        response = arun(api.acompletion(policy=policy, messages=messages))
        return str(response.choices[0].message.content)
    if mode == "completion_stream":
        parts = api.completion(policy=policy, messages=messages, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in parts if c.choices)
    raise ValueError(mode)


def completion_body(usage: Any, message: Any = None) -> str:
    """An OpenAI chat completion with ``message`` (default: a short text) and ``usage``."""
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "a",
            "choices": [
                {
                    "index": 0,
                    "message": message or {"role": "assistant", "content": "hi there"},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
    )


def chunk(delta: Any, *, finish: str | None = None, usage: Any = None, choices: bool = True) -> str:
    """An OpenAI stream chunk (``choices=False``: ``"choices": []``)."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "a",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
    }
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body)
