"""A store, and a call through a Redis-backed policy, keep working across event loops: each
``asyncio.run`` (a script run twice, a worker, a test) gets connections of its own instead of
ones bound to a loop that has closed."""

from __future__ import annotations

import asyncio
import gc
import uuid
import weakref
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import policyroute
from policyroute.accounting import _clear_default_cache
from policyroute.api import clear_cache
from policyroute.budgets.stores.base import BudgetStore, ReserveLine
from policyroute.testing import FakeProvider, Reply, Usage

NOW = 1_750_000_000.0
LINE = ReserveLine(
    key="b/global/day", limit=Decimal(1), amount=Decimal("0.01"), expires_at=NOW + 86_400
)


def test_a_store_serves_one_event_loop_after_another(
    store_factory: Callable[[], BudgetStore],
) -> None:
    store = store_factory()

    async def reserve_and_settle(n: int) -> Decimal:
        result = await store.areserve([LINE], reservation_id=f"r{n}", lease_seconds=60, now=NOW)
        assert result.ok
        (state,) = await store.asettle(f"r{n}", Decimal("0.001"), now=NOW)
        return state.spent

    spent = [asyncio.run(reserve_and_settle(n)) for n in range(3)]
    assert spent == [Decimal("0.001"), Decimal("0.002"), Decimal("0.003")]
    assert store.state(LINE.key, now=NOW).reserved == 0


POLICY = """
policyroute: 1
name: loops
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_LOOPS_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes:
  - name: default
    to: a
budgets:
  - name: daily
    limit_usd: 10
    window: day
store: {{backend: redis, url: "{url}", prefix: "{prefix}"}}
receipts: {{sink: none}}
defaults: {{max_tokens: 10}}
"""


@pytest.fixture
def fp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setenv("PR_LOOPS_KEY", "sk-loops-0123456789")
    with FakeProvider() as provider:
        provider.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
        yield provider
    clear_cache()
    _clear_default_cache()


def test_calls_on_a_redis_budget_run_in_one_event_loop_after_another(
    fp: FakeProvider, redis_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    prefix = f"loops{uuid.uuid4().hex[:8]}"
    policy.write_text(POLICY.format(base=fp.openai_base, url=redis_url, prefix=prefix))

    async def ask() -> str:
        response = await policyroute.acompletion(
            policy=str(policy), messages=[{"role": "user", "content": "hello"}]
        )
        return str(response.choices[0].message.content)

    assert [asyncio.run(ask()) for _ in range(3)] == ["hi", "hi", "hi"]
    assert len(fp.requests) == 3


def test_a_finished_event_loop_is_not_kept_by_the_store(
    store_factory: Callable[[], BudgetStore],
) -> None:
    # Each store keeps async clients per loop; a loop that has ended must be free to go, with
    # its client, instead of piling up for as long as the store lives.
    store = store_factory()
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def reserve(n: int) -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        result = await store.areserve([LINE], reservation_id=f"r{n}", lease_seconds=60, now=NOW)
        assert result.ok
        await store.asettle(f"r{n}", Decimal(0), now=NOW)

    for n in range(3):
        asyncio.run(reserve(n))
    gc.collect()
    assert [ref() for ref in loops] == [None, None, None]
