"""Helpers for the cost and receipt tests: candidates, small policies, litellm responses, and
readers of what the receipt sinks wrote."""

from __future__ import annotations

import json
import os
import sqlite3
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import respx

from policyroute.costs.pricing import resolve_model_info
from policyroute.costs.receipts import SCHEMA_VERSION
from policyroute.policy.compile import CompiledPolicy, compile_policy
from policyroute.policy.model import (
    BudgetSpec,
    ModelSpec,
    PolicySpec,
    PriceSpec,
    ReceiptsSpec,
    RouteSpec,
    Secret,
    TargetSpec,
    WindowSpec,
)
from policyroute.routing.decision import Candidate

FIXTURES = Path(__file__).parent / "fixtures"

# model string -> (fixture stem, api_base, endpoint URL pattern)
PROVIDER_CASES: dict[str, tuple[str, str | None, str]] = {
    "openai/o4-mini": (
        "openai_o4mini_cached_reasoning",
        "https://api.openai.test/v1",
        r"https://api\.openai\.test/v1/chat/completions",
    ),
    "anthropic/claude-sonnet-4-5-20250929": (
        "anthropic_sonnet_cache",
        "https://api.anthropic.test",
        r"https://api\.anthropic\.test/v1/messages",
    ),
    "gemini/gemini-2.5-flash": (
        "gemini_flash_thinking_cached",
        None,
        r"https://generativelanguage\.googleapis\.com/.*",
    ),
}
MESSAGES = [{"role": "user", "content": "hello"}]
FAKE_KEY = "sk-test-abcdefghijklmnop0123"

# One priced model on the fake provider of the ``fake_a`` fixture (format with ``base``); its
# key is a ${VAR} reference, as a deployed policy's would be.
FAKE_A_POLICY = """
policyroute: 1
name: fake-a
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_FAKE_A_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
receipts: {{sink: none}}
defaults: {{max_tokens: 10}}
"""


def candidate(model: str, *, alias: str = "m", price: PriceSpec | None = None) -> Candidate:
    spec = ModelSpec(alias=alias, model=model, price=price)
    return Candidate(alias, spec, resolve_model_info(spec), {"model": model})


def fixture_json(stem: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{stem}.json").read_text())
    return data


def litellm_response(model: str, *, stream: bool) -> Any:
    """Serve the provider's recorded wire body from a respx mock and call litellm on it.

    litellm parses it exactly as in production; a stream is assembled with
    ``litellm.stream_chunk_builder`` as the executor does.
    """
    import litellm

    stem, api_base, pattern = PROVIDER_CASES[model]
    if stream:
        reply = httpx.Response(
            200,
            content=(FIXTURES / f"{stem}.sse").read_bytes(),
            headers={"content-type": "text/event-stream"},
        )
    else:
        reply = httpx.Response(200, json=fixture_json(stem))
    kwargs: dict[str, Any] = {"model": model, "messages": MESSAGES, "api_key": FAKE_KEY}
    if api_base:
        kwargs["api_base"] = api_base
    if stream:
        kwargs.update(stream=True, stream_options={"include_usage": True})
    with respx.mock(assert_all_called=True) as mock:
        mock.post(url__regex=pattern).mock(return_value=reply)
        response = litellm.completion(**kwargs)
        if stream:
            chunks = list(response)
            response = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    return response


def make_policy(
    *,
    budgets: tuple[BudgetSpec, ...] = (),
    include_prompt: bool = False,
    api_key_env: str | None = None,
    api_key_value: str | None = None,
) -> CompiledPolicy:
    key = Secret(api_key_value, api_key_env) if api_key_env else None
    models = {
        "mini": ModelSpec(alias="mini", model="openai/gpt-4o-mini", api_key=key),
        "local": ModelSpec(
            alias="local",
            model="ollama/llama3.1",
            price=PriceSpec(input_per_mtok=Decimal("1"), output_per_mtok=Decimal("2")),
        ),
    }
    spec = PolicySpec(
        name="test-policy",
        version=1,
        models=models,
        groups={},
        routes=(RouteSpec(name="default", to=TargetSpec(("mini", "local"))),),
        budgets=budgets,
        receipts=ReceiptsSpec(sink="none", include_prompt=include_prompt),
    )
    return compile_policy(spec)


def daily_budget(name: str = "per-user-daily", limit: str = "1") -> BudgetSpec:
    return BudgetSpec(
        name=name,
        limit_usd=Decimal(limit),
        window=WindowSpec(kind="day"),
        per="metadata.user_id",
        warn_at=(0.5, 0.9),
    )


def call_receipt(**fields: Any) -> dict[str, Any]:
    """A call receipt as the sinks write it (10 in, 5 out, $0.10, ok), ``fields`` on top."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "call",
        "ts": "2026-01-02T03:04:05.000+00:00",
        "status": "ok",
        "cost": "0.100000",
        "input_tokens": 10,
        "output_tokens": 5,
        **fields,
    }


def jsonl_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL receipt file, in file order."""
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def receipt_ids(path: Path) -> list[str]:
    """The request ids of a SQLite receipt file's rows, sorted."""
    with sqlite3.connect(path) as db:
        ids = sorted(row[0] for row in db.execute("SELECT request_id FROM receipts"))
    db.close()  # the context manager commits; it does not close
    return ids


def fork() -> int:
    """``os.fork()``, without the DeprecationWarning Python 3.12+ gives when threads are alive
    (warnings are errors in the tests, and forking with a writer thread alive is the point)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()
