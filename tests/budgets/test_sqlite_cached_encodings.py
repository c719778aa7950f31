"""The SQLite store's per-line values converted once: what it writes is what it wrote before."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from policyroute.budgets.stores.base import ReserveLine, to_nano
from policyroute.budgets.stores.sqlite import SQLiteStore, _held_text, _line_constants


@pytest.mark.parametrize(
    "held",
    [
        [],
        [("daily/u1/day:2025-01-01", 5)],
        [('we"ird\\key/caf\u00e9/day:x', 10**12), ("a%2Fb/*/month:2025-01", 0)],
    ],
)
def test_held_text_reads_back_as_the_pairs(held: list[tuple[str, int]]) -> None:
    assert json.loads(_held_text(held)) == [list(pair) for pair in held]


def test_line_constants_round_the_limit_down_and_spell_thresholds() -> None:
    limit = Decimal("0.0000000019")
    assert _line_constants(limit, (0.5, 0.75)) == (to_nano(limit, up=False), "0.5,0.75")
    assert _line_constants(limit, ())[0] == 1


def test_a_reservation_settles_each_line_it_held(tmp_path: object) -> None:
    store = SQLiteStore(f"{tmp_path}/b.sqlite3")
    try:
        lines = [
            ReserveLine('q"uote/s/day:x', Decimal(1), Decimal("0.25"), 1e12),
            ReserveLine("plain/*/day:x", Decimal(1), Decimal("0.25"), 1e12),
        ]
        assert store.reserve(lines, reservation_id="r", lease_seconds=60, now=0.0).ok
        states = store.settle("r", Decimal("0.1"), now=1.0)
        assert [(s.key, s.spent, s.reserved) for s in states] == [
            ('q"uote/s/day:x', Decimal("0.1"), Decimal(0)),
            ("plain/*/day:x", Decimal("0.1"), Decimal(0)),
        ]
    finally:
        store.close()
