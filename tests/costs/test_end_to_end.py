"""Through the real executor: recorded provider answers served by respx, priced in receipts."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import litellm
import respx

from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import JsonlSink
from policyroute.execution.executor import Executor
from policyroute.execution.result import StreamDone
from policyroute.policy.compile import CompiledPolicy, compile_policy
from policyroute.policy.model import ModelSpec, PolicySpec, RouteSpec, Secret, TargetSpec
from policyroute.request import Request

from .helpers import FIXTURES, MESSAGES, fixture_json, litellm_response

SONNET = "anthropic/claude-sonnet-4-5-20250929"
ENDPOINT = "https://api.anthropic.test/v1/messages"
BACKUP_ENDPOINT = "https://backup.anthropic.test/v1/messages"
KEY = "sk-ant-e2e-secret-0123456789"


def _policy() -> CompiledPolicy:
    def sonnet(alias: str, base: str) -> ModelSpec:
        return ModelSpec(
            alias=alias, model=SONNET, api_base=base, api_key=Secret(KEY, "E2E_ANTHROPIC_KEY")
        )

    models = {
        "primary": sonnet("primary", "https://api.anthropic.test"),
        "backup": sonnet("backup", "https://backup.anthropic.test"),
    }
    spec = PolicySpec(
        name="e2e",
        version=1,
        models=models,
        groups={},
        routes=(RouteSpec(name="default", to=TargetSpec(("primary", "backup"))),),
    )
    return compile_policy(spec)


def _run(tmp_path: Path, *, stream: bool, replies: list[httpx.Response]) -> list[dict[str, Any]]:
    policy = _policy()
    sink = JsonlSink(tmp_path / "receipts.jsonl")
    acct = PolicyAccounting(policy, guard=None, sinks=[sink])
    executor = Executor(policy, accounting=acct, sleep=lambda s: None)
    request = Request(messages=MESSAGES, stream=stream, metadata={"user_id": "u-7"})
    with respx.mock(assert_all_called=False) as mock:
        mock.post(ENDPOINT).mock(side_effect=replies[:-1] or replies)
        mock.post(BACKUP_ENDPOINT).mock(return_value=replies[-1])
        if stream:
            events = list(executor.stream(request))
            assert isinstance(events[-1], StreamDone)
        else:
            executor.complete(request)
    sink.close()
    path = tmp_path / "receipts.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    path.unlink()
    return records


def _unary() -> httpx.Response:
    return httpx.Response(200, json=fixture_json("anthropic_sonnet_cache"))


def _sse() -> httpx.Response:
    body = (FIXTURES / "anthropic_sonnet_cache.sse").read_bytes()
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def test_receipt_cost_equals_litellm_completion_cost_streamed_or_not(tmp_path: Path) -> None:
    expected = Decimal(
        repr(
            litellm.completion_cost(
                completion_response=litellm_response(SONNET, stream=False), model=SONNET
            )
        )
    )
    unary = _run(tmp_path, stream=False, replies=[_unary()])
    streamed = _run(tmp_path, stream=True, replies=[_sse()])
    for records in (unary, streamed):
        attempt, call = records
        assert (attempt["kind"], call["kind"]) == ("attempt", "call")
        assert abs(Decimal(attempt["cost"]) - expected) <= Decimal("1e-6")
        assert call["cost"] == attempt["cost"]
        assert (attempt["input_tokens"], attempt["cache_read_tokens"]) == (4512, 3000)
        assert (attempt["cache_write_tokens"], attempt["output_tokens"]) == (1500, 250)
        assert attempt["provider"] == "anthropic"
        assert attempt["user"] == "u-7"
    assert streamed[0]["cost"] == unary[0]["cost"]
    assert streamed[0]["ttft_ms"] is not None


def test_failed_attempt_then_fallback_writes_one_receipt_each(tmp_path: Path) -> None:
    overloaded = httpx.Response(
        529, json={"type": "error", "error": {"type": "overloaded_error", "message": KEY}}
    )
    records = _run(tmp_path, stream=False, replies=[overloaded, overloaded, overloaded, _unary()])
    kinds = [r["kind"] for r in records]
    assert kinds[-1] == "call"
    attempts = records[:-1]
    assert [a["deployment"] for a in attempts][-1] == "backup"
    assert all(a["status"] == "error" for a in attempts[:-1])
    assert all(a["cost"] == "0.000000" for a in attempts[:-1])
    call = records[-1]
    assert (call["deployment"], call["attempts"], call["status"]) == (
        "backup",
        len(attempts),
        "ok",
    )
    assert call["cost"] == attempts[-1]["cost"]
    assert KEY not in json.dumps(records)
