"""A new version of a policy deployed over a store that outlives it (a SQLite file, a Redis
server): spend already recorded meets the new version's budgets as the policy language says."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import policyroute
from budgets.helpers import attempt, budget, fixed_counter, policy
from policyroute import load_policy
from policyroute.budgets import BudgetGuard, budget_status
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


def _settle_under(
    store: BudgetStore, rid: str, limit: str, warn_at: tuple[float, ...], amount: str = "0.02"
) -> tuple[float, ...]:
    line = ReserveLine(
        key=KEY, limit=D(limit), amount=D(amount), expires_at=time.time() + 3600, thresholds=warn_at
    )
    assert store.reserve([line], reservation_id=rid, lease_seconds=60, now=time.time()).ok
    (state,) = store.settle(rid, D(amount), now=time.time())
    return state.crossed


def test_a_threshold_fires_once_while_two_versions_with_different_limits_charge_a_line(
    store_factory: Callable[[], BudgetStore],
) -> None:
    # A rolling deploy: the old version ($1, warn at 50%) and the new one ($2, warn at 50% and
    # 90%) settle on one line in turn. Each settle saw the other's limit and warn_at as the
    # line's, forgot the other's fired threshold, and the old 50% warning fired every time.
    old, new = store_factory(), store_factory()
    crossed = [_settle_under(old, "r0", "1", (0.5,), amount="0.6")]
    for i in range(1, 8):
        store, limit, warn_at = (new, "2", (0.5, 0.9)) if i % 2 else (old, "1", (0.5,))
        crossed.append(_settle_under(store, f"r{i}", limit, warn_at))

    assert crossed == [(0.5,), (), (), (), (), (), (), ()]


def test_a_changed_limit_fires_its_own_thresholds_once_as_spend_reaches_them(
    store_factory: Callable[[], BudgetStore],
) -> None:
    store = store_factory()
    assert [_settle_under(store, f"a{i}", "0.1", (0.5,)) for i in range(3)] == [(), (), (0.5,)]
    # Raised to $0.20: its 50% ($0.10) fires when spend reaches it, once.
    raised = [_settle_under(store, f"b{i}", "0.2", (0.5,)) for i in range(3)]
    assert raised == [(), (0.5,), ()]
    # Lowered to $0.16 with spend at $0.12, past its 50% ($0.08): that fires at the next settle,
    # though 50% of the $0.20 had fired; its 90% ($0.144) fires as spend reaches it.
    lowered = [_settle_under(store, f"c{i}", "0.16", (0.5, 0.9)) for i in range(2)]
    assert lowered == [(0.5,), (0.9,)]


def test_a_sqlite_line_whose_fired_thresholds_an_earlier_version_wrote_as_fractions_settles(
    tmp_path: Path,
) -> None:
    from policyroute.budgets.stores.sqlite import SQLiteStore

    path = tmp_path / "budgets.sqlite3"
    store = SQLiteStore(path)
    try:
        assert _settle_under(store, "a", "1", (0.5,), amount="0.6") == (0.5,)
        with sqlite3.connect(path) as conn:  # as the earlier layout of ``fired`` read
            conn.execute("UPDATE budget_lines SET fired = '0.5'")
        conn.close()
        # The fraction stands for no spend: the threshold fires once more, then is recorded.
        assert _settle_under(store, "b", "1", (0.5,)) == (0.5,)
        assert _settle_under(store, "c", "1", (0.5,)) == ()
    finally:
        store.close()


def test_a_crossing_judged_against_the_other_versions_limit_is_reported_with_that_limit(
    store_factory: Callable[[], BudgetStore],
) -> None:
    # The old version ($1, no warning) reserves, then the new one ($0.002, warn at 50%): the
    # line holds the new limit and warn_at when the old call settles and crosses 50% of $0.002.
    # It was reported as 50% of $1, spend $0.001 and $0.999 remaining.
    old_budget, new_budget = budget("daily", "1"), budget("daily", "0.002", warn_at=[0.5])
    old = BudgetGuard(policy([old_budget]), store_factory(), token_counter=fixed_counter(100))
    new = BudgetGuard(policy([new_budget]), store_factory(), token_counter=fixed_counter(100))
    params = {"max_tokens": 900}  # $0.001 reserved at $1/M tokens each way
    in_flight = old.admit(attempt([old_budget], params=params))
    new.admit(attempt([new_budget], params=params))

    (charge,) = old.settle(in_flight, D("0.001"))

    assert (charge.thresholds_crossed, charge.limit, charge.spent_after) == (
        (0.5,),
        D("0.002"),
        D("0.001"),
    )
