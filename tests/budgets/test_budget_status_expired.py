"""``budget status`` shows reservations whose lease ran out apart, as ``expired``.

A process that died after reserving leaves its worst case held until the next reservation on
the store reclaims it. Status reports that amount (it is part of ``reserved``), changes nothing
itself, and bounds its wait for a locked SQLite file by the policy's ``store.lock_timeout``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest

from budgets.helpers import attempt, budget, fixed_counter, policy, write_store_policy
from budgets.test_sqlite_migration import old_file
from policyroute.budgets import BudgetGuard, budget_status
from policyroute.budgets.stores.base import BudgetStore
from policyroute.cli import main
from policyroute.policy.model import WindowSpec
from policyroute.testing import FakeProvider


# Memory and SQLite time leases (and rolling windows) by the ``now`` they are given, which these
# tests move; Redis times them by its server's clock, tested in test_redis_server_clock.py.
@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


PARAMS = {"max_tokens": 900}
PAST_ANY_LEASE = 4000.0  # beyond the guard's lease (timeout 600 s + margin) and store.lease


def _reserve(pol: object, store: BudgetStore, budgets: list, at: float) -> None:  # type: ignore[type-arg]
    guard = BudgetGuard(pol, store, clock=lambda: at, token_counter=fixed_counter(100))  # type: ignore[arg-type]
    guard.admit(attempt(budgets, params=PARAMS))


def test_a_dead_processs_reservation_shows_as_expired_until_reclaimed(store: BudgetStore) -> None:
    team = budget("team", limit="1", window=WindowSpec(kind="month"))
    pol = policy([team])
    start = time.time()
    _reserve(pol, store, [team], start)  # never settled: its process died

    (live,) = budget_status(pol, store, now=start + 1)
    (dead,) = budget_status(pol, store, now=start + PAST_ANY_LEASE)
    again = budget_status(pol, store, now=start + PAST_ANY_LEASE)

    held = live.reserved
    assert held is not None
    assert held > 0
    assert live.expired == 0  # in flight: its lease still runs
    assert (dead.spent, dead.reserved, dead.expired) == (Decimal(0), held, held)
    assert dead.remaining == Decimal(1) - held
    assert again == [dead]  # status reclaimed nothing

    _reserve(pol, store, [team], start + PAST_ANY_LEASE)  # the next reservation reclaims it
    (after,) = budget_status(pol, store, now=start + PAST_ANY_LEASE)
    assert (after.spent, after.reserved, after.expired) == (held, held, Decimal(0))
    # The reclaimed worst case moved from reserved to spent: what was left for the next call
    # was what status said.
    assert after.remaining == dead.remaining - held


def test_expired_counts_only_the_lines_of_the_scanned_budget(store: BudgetStore) -> None:
    team = budget("team", limit="1", window=WindowSpec(kind="month"))
    users = budget("users", limit="1", window=WindowSpec(kind="month"), per="metadata.user")
    pol = policy([team, users])
    start = time.time()
    _reserve(pol, store, [team, users], start)
    guard = BudgetGuard(pol, store, clock=lambda: start, token_counter=fixed_counter(100))  # type: ignore[arg-type]
    guard.admit(attempt([users], params=PARAMS, metadata={"user": "u2"}))

    rows = budget_status(pol, store, now=start + PAST_ANY_LEASE)

    held = rows[0].reserved
    assert [(r.budget, r.scope, r.expired) for r in rows] == [
        ("team", "*", held),
        ("users", "<none>", held),
        ("users", "u2", held),
    ]


def _policy(tmp_path: Path, fp: FakeProvider, extra: str = "") -> Path:
    path = write_store_policy(
        tmp_path / "policy.yaml", fp.openai_base, f"{{backend: sqlite, path: b.sqlite3{extra}}}"
    )
    # A rolling window: a reservation made PAST_ANY_LEASE ago is on the line the status reads
    # at any time of day (a calendar day's line changes at midnight, an hour's lease before).
    text = path.read_text(encoding="utf-8")
    assert text.count("window: day") == 1
    path.write_text(text.replace("window: day", "window: 6h"), encoding="utf-8")
    return path


def test_the_status_command_shows_expired_in_every_format(
    tmp_path: Path, fake_provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    import policyroute
    from policyroute.budgets.stores.sqlite import SQLiteStore
    from policyroute.policy.loader import load_policy

    path = _policy(tmp_path, fake_provider)
    policyroute.completion(policy=path, messages=[{"role": "user", "content": "hi"}])
    store = SQLiteStore(tmp_path / "b.sqlite3")
    try:
        daily = load_policy(path).spec.budgets[0]
        # Reserved by a process that died an hour ago, its lease long over.
        _reserve(policy([daily]), store, [daily], time.time() - PAST_ANY_LEASE)
    finally:
        store.close()

    assert main(["budget", "status", str(path), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["expired"] == row["reserved"] != "0"
    assert main(["budget", "status", str(path), "--format", "csv"]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert dict(zip(header.split(","), line.split(","), strict=True))["expired"] == row["expired"]
    assert main(["budget", "status", str(path)]) == 0
    table = capsys.readouterr().out.splitlines()
    column = table[0].split().index("expired")
    assert table[1].split()[column] == row["expired"]


def test_status_of_a_locked_file_to_migrate_fails_within_the_lock_timeout(
    tmp_path: Path, fake_provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    """Status opens a store for writing only to migrate a file of the earlier layout (a store
    of this version is read without its write lock: test_budget_status_store_files)."""
    path = _policy(tmp_path, fake_provider, ", lock_timeout: 300ms")
    db = tmp_path / "b.sqlite3"
    old_file(db)
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process, stuck inside a transaction
        started = time.monotonic()
        code = main(["budget", "status", str(path)])
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()

    err = capsys.readouterr().err
    assert code == 1
    assert str(db) in err
    assert "0.3 s" in err
    assert elapsed < 3.0
