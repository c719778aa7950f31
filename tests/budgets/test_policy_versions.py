"""A new version of a policy deployed over a store that outlives it (a SQLite file, a Redis
server): spend already recorded meets the new version's budgets as the policy language says."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import policyroute
from policyroute import load_policy
from policyroute.budgets import budget_status
from policyroute.budgets.stores.base import BudgetStore, ReserveLine
from policyroute.errors import BudgetExceeded
from policyroute.testing import FakeProvider

D = Decimal
NOW = 1_750_000_000.0
KEY = "daily/%2A/day:2025-06-15"

POLICY = """
policyroute: 1
name: versions
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
  - {budget}
store: {store}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults: {{max_tokens: 10}}
"""


def _store_text(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        return f'{{backend: redis, url: "{url}", prefix: v{tmp_path.name[-8:]}}}'
    return "{backend: sqlite, path: budgets.sqlite3}"


def _deploy(path: Path, fp: FakeProvider, budget: str, store: str) -> Path:
    path.write_text(POLICY.format(base=fp.openai_base, budget=budget, store=store))
    return path


def _call(path: Path, **facts: object) -> None:
    policyroute.completion(policy=path, messages=[{"role": "user", "content": "hi"}], **facts)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_status_of_a_budget_that_dropped_its_per_shows_only_its_one_scope(
    tmp_path: Path, fake_provider: FakeProvider, backend: str, request: pytest.FixtureRequest
) -> None:
    store = _store_text(tmp_path, backend, request)
    path = tmp_path / "policy.yaml"
    per_user = "{name: daily, limit_usd: 1, window: day, per: metadata.user_id}"
    _call(_deploy(path, fake_provider, per_user, store), metadata={"user_id": "u1"})

    # The next version holds the whole team to one budget: u1's line is no scope of it.
    _deploy(path, fake_provider, "{name: daily, limit_usd: 1, window: day}", store)
    rows = budget_status(load_policy(path))

    assert [(r.budget, r.scope, r.spent, r.remaining, r.state) for r in rows] == [
        ("daily", "*", D(0), D(1), "idle")
    ]
    _call(path, metadata={"user_id": "u1"})
    (row,) = budget_status(load_policy(path))
    assert (row.scope, row.spent, row.state) == ("*", D("0.013"), "charged")


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_lowered_limit_refuses_at_once_and_a_raised_one_counts_the_spend_so_far(
    tmp_path: Path, fake_provider: FakeProvider, backend: str, request: pytest.FixtureRequest
) -> None:
    store = _store_text(tmp_path, backend, request)
    path = tmp_path / "policy.yaml"
    _deploy(path, fake_provider, "{name: daily, limit_usd: 1, window: day}", store)
    for _ in range(3):
        _call(path)  # $0.039 spent

    _deploy(path, fake_provider, "{name: daily, limit_usd: 0.03, window: day}", store)
    with pytest.raises(BudgetExceeded, match=r"limit \$0\.03, spent \$0\.039"):
        _call(path)

    # Raised to $0.07: each call may cost $0.028, so one more fits beside $0.039, not two.
    _deploy(path, fake_provider, "{name: daily, limit_usd: 0.07, window: day}", store)
    _call(path)
    with pytest.raises(BudgetExceeded, match=r"limit \$0\.07, spent \$0\.052"):
        _call(path)


def _line(expires_at: float) -> ReserveLine:
    return ReserveLine(
        key=KEY, limit=D(1), amount=D("0.3"), expires_at=expires_at, thresholds=(0.5,)
    )


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_line_past_its_expiry_starts_afresh_when_its_key_is_charged_again(
    store_factory: Callable[[], BudgetStore],
) -> None:
    # A calendar key is met again after its line expired when the time zone changes: in UTC,
    # day 2025-06-15 is kept until 01:00 on the 16th; in Los Angeles it runs until 07:00.
    store = store_factory()
    assert store.reserve([_line(NOW + 10)], reservation_id="utc", lease_seconds=5, now=NOW).ok
    store.settle("utc", D("0.8"), now=NOW + 1)
    # Calls go on (another budget) until just before the line expires.
    other = ReserveLine(
        key="other/%2A/day:2025-06-15", limit=D(1), amount=D(0), expires_at=NOW + 99
    )
    assert store.reserve([other], reservation_id="other", lease_seconds=5, now=NOW + 9.9).ok

    later = NOW + 10.5  # past the expiry, before the store's next sweep
    assert store.state(KEY, now=later).spent == 0
    result = store.reserve([_line(NOW + 3600)], reservation_id="la", lease_seconds=5, now=later)

    assert result.ok, result.refused
    (state,) = store.settle("la", D("0.6"), now=later)
    # Spend starts from nothing, and the 50% warning fires again for the new window.
    assert (state.spent, state.crossed) == (D("0.6"), (0.5,))


def test_redis_starts_a_line_past_its_expiry_afresh_too(redis_url: str, tmp_path: Path) -> None:
    from policyroute.budgets.stores.redis import RedisStore

    store = RedisStore(redis_url, prefix=f"v{tmp_path.name[-8:]}")
    try:
        now = time.time()
        assert store.reserve([_line(now + 1)], reservation_id="utc", lease_seconds=1, now=now).ok
        store.settle("utc", D("0.8"), now=now)
        time.sleep(1.5)  # Redis expires the line by its own clock

        later = time.time()
        assert store.reserve(
            [_line(later + 3600)], reservation_id="la", lease_seconds=5, now=later
        ).ok
        (state,) = store.settle("la", D("0.6"), now=later)
        assert (state.spent, state.crossed) == (D("0.6"), (0.5,))
    finally:
        store.close()
