"""What a call cost, read from the response the way a litellm user reads it: the answer a
stream assembles (``stream.result.response``) says what the receipt charged, as the
unstreamed response does (``_hidden_params["response_cost"]`` and ``["policyroute"]``),
also where the policy prices the deployment itself rather than litellm's list price.

``litellm.completion_cost(response)`` stays litellm's own figure (its list price, or an
error for a model litellm cannot price), as it is on litellm's response; what policyroute
charged is in the hidden params.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest

import policyroute
from policyroute.testing import FakeProvider, Reply, Usage

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hello there"}]
# 7 tokens in, 3 out at the policy's own price: 7 * 1000e-6 + 3 * 2000e-6 dollars.
CHARGED = Decimal("0.013")


@pytest.fixture
def policy(served: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PR_COSTS_KEY", "sk-test")
    served.set_default("gpt-4o-mini", Reply(text="one two", usage=Usage(prompt=7, completion=3)))
    return f"""
policyroute: 1
name: parity-costs
models:
  m:
    model: openai/gpt-4o-mini
    api_base: {served.openai_base}
    api_key: ${{PR_COSTS_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: m
receipts: {{sink: jsonl, path: receipts.jsonl}}
"""


def _charged(tmp_path: Path) -> list[Decimal]:
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    return [Decimal(r["cost"]) for r in map(json.loads, lines) if r["kind"] == "call"]


def _assert_charged(response: Any, summary: Any) -> None:
    hidden = response._hidden_params
    assert Decimal(str(hidden["response_cost"])) == CHARGED
    assert hidden["policyroute"] == summary
    assert Decimal(str(summary["cost"])) == CHARGED


def test_the_unstreamed_response_says_what_the_receipt_charged(policy: str, tmp_path: Path) -> None:
    response = policyroute.completion(policy=policy, messages=MESSAGES)
    _assert_charged(response, response._hidden_params["policyroute"])
    assert _charged(tmp_path) == [CHARGED]
    # litellm's own figure, as on litellm's response: its list price.
    assert litellm.completion_cost(response) < float(CHARGED)


def test_the_streamed_answer_says_what_the_receipt_charged(policy: str, tmp_path: Path) -> None:
    stream = policyroute.completion(policy=policy, messages=MESSAGES, stream=True)
    list(stream)
    assert stream.result is not None
    _assert_charged(stream.result.response, stream.policyroute)
    assert _charged(tmp_path) == [CHARGED]


def test_the_async_streamed_answer_says_what_the_receipt_charged(
    policy: str, tmp_path: Path
) -> None:
    async def run() -> Any:
        stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
        async for _ in stream:
            pass
        return stream

    stream = asyncio.run(run())
    assert stream.result is not None
    _assert_charged(stream.result.response, stream.policyroute)
    assert _charged(tmp_path) == [CHARGED]
