"""Builders shared by the budget tests and their worker processes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from policyroute.budgets.stores.base import BudgetStore
from policyroute.costs.pricing import resolve_model_info
from policyroute.execution.hooks import AttemptInfo, CallInfo
from policyroute.policy.model import (
    BudgetSpec,
    DefaultsSpec,
    ModelSpec,
    OnExceed,
    PriceSpec,
    Requirements,
    StoreSpec,
    WindowSpec,
)
from policyroute.request import Request
from policyroute.routing.decision import Candidate, Decision

# One function tool, as the OpenAI format writes it, for the tool-token estimate tests.
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
# $1 per million tokens both ways: a call of 100 input + 900 output tokens costs $0.001.
FLAT_PRICE = PriceSpec(input_per_mtok=Decimal(1), output_per_mtok=Decimal(1))


def make_store(backend: str, location: str | None, prefix: str) -> BudgetStore:
    """A store of ``backend``: memory, sqlite, or redis (``redis-cluster`` and ``redis-sentinel``
    name Redis deployments; ``location`` is then their URL)."""
    if backend == "memory":
        from policyroute.budgets.stores.memory import MemoryStore

        return MemoryStore()
    if backend == "sqlite":
        from policyroute.budgets.stores.sqlite import SQLiteStore

        assert location is not None
        return SQLiteStore(location)
    from policyroute.budgets.stores.redis import RedisStore

    assert location is not None
    return RedisStore(location, prefix=prefix)


def fixed_counter(tokens: int) -> Any:
    def count(**_: Any) -> int:
        return tokens

    return count


def candidate(
    alias: str = "flat",
    model: str = "custom/flat-model",
    price: PriceSpec | None = FLAT_PRICE,
    **spec: Any,
) -> Candidate:
    model_spec = ModelSpec(alias=alias, model=model, price=price, **spec)
    return Candidate(alias, model_spec, resolve_model_info(model_spec), {"model": model})


def budget(
    name: str = "b",
    limit: str = "0.1",
    window: WindowSpec | None = None,
    *,
    per: str | None = None,
    warn_at: Sequence[float] = (),
    on_exceed: OnExceed | None = None,
    routes: Sequence[str] | None = None,
) -> BudgetSpec:
    return BudgetSpec(
        name=name,
        limit_usd=Decimal(limit),
        window=window or WindowSpec(kind="day"),
        per=per,
        warn_at=tuple(warn_at),
        on_exceed=on_exceed or OnExceed(),
        routes=tuple(routes) if routes is not None else None,
    )


def policy(
    budgets: Sequence[BudgetSpec] = (),
    *,
    max_tokens: int | None = None,
    store: StoreSpec | None = None,
) -> Any:
    """The parts of a CompiledPolicy the guard and status read."""
    defaults = DefaultsSpec(max_tokens=max_tokens)
    spec = SimpleNamespace(
        budgets=tuple(budgets), store=store or StoreSpec(backend="memory"), defaults=defaults
    )
    return SimpleNamespace(spec=spec, defaults=defaults)


def attempt(
    budgets: Sequence[BudgetSpec],
    *,
    cand: Candidate | None = None,
    params: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Sequence[str] = (),
    route: str = "default",
    messages: Sequence[Mapping[str, Any]] | None = None,
    request_id: str | None = None,
) -> AttemptInfo:
    cand = cand or candidate()
    request = Request(
        messages=messages or [{"role": "user", "content": "hello world"}],
        metadata=metadata or {},
        tags=tuple(tags),
    )
    if request_id is not None:
        request.request_id = request_id
    decision = Decision(
        route=route,
        candidates=(cand,),
        params={},
        budgets=tuple(budgets),
        requirements=Requirements(),
        trace=(),
    )
    call = CallInfo(request=request, policy=policy(budgets), decision=decision)
    return AttemptInfo(call=call, candidate=cand, params=dict(params or {}), number=1)


# A policy whose one budget lives in ``store``; the fake provider's default answer costs $0.013
# (7 input tokens at $0.001 + 3 output tokens at $0.002).
STORE_POLICY = """\
policyroute: 1
name: store-faults
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_FAULT_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
budgets:
  - name: daily
    limit_usd: 1
    window: day
store: {store}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults: {{max_tokens: 10}}
"""


def write_store_policy(path: Path, base: str, store: str) -> Path:
    """Write :data:`STORE_POLICY` with ``store`` (a flow mapping) to ``path``; return it."""
    path.write_text(STORE_POLICY.format(base=base, store=store), encoding="utf-8")
    return path
