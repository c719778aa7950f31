"""The SQLite budget store's schema and statements, and the migration from its earlier layout.

Tables: ``budget_lines`` (one row per budget line: limit, spent, reserved, thresholds),
``spend_buckets`` (spend of rolling windows, by bucket) and ``open_reservations`` (one row per
reservation: id, lease expiry, and its amount per line as JSON). One row per reservation keeps a
reserve to one INSERT and a settle to one DELETE: each table a transaction touches is another
page written to the WAL at commit, the bulk of a transaction's cost.

Example:
    >>> "open_reservations" in SCHEMA
    True
"""

from __future__ import annotations

import json
from typing import Any, Protocol

__all__ = [
    "ADD_BUCKET",
    "DROP_OLD_TABLES",
    "EARLIER_TABLES",
    "EXPIRED_LINES",
    "EXPIRED_RESERVATIONS",
    "INSERT_RESERVATION",
    "OLD_RESERVATIONS",
    "OLD_TABLES",
    "RENEW_RESERVATION",
    "RESERVE_KNOWN_LINE",
    "RESERVE_LINE",
    "ROLLBACK_LINES",
    "SAVEPOINT_LINES",
    "SCAN_LINES",
    "SCHEMA",
    "SELECT_LINE",
    "SETTLE_LINE",
    "SET_FIRED",
    "SUM_BUCKETS",
    "SWEEP",
    "TABLES",
    "TAKE_RESERVATION",
    "migrate",
]


class _Cursor(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, rows: Any, /) -> Any: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_lines (
    key TEXT PRIMARY KEY,
    limit_nano INTEGER NOT NULL,
    spent_nano INTEGER NOT NULL DEFAULT 0,
    reserved_nano INTEGER NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL,
    bucket_seconds REAL,
    span_seconds REAL,
    thresholds TEXT NOT NULL DEFAULT '',
    fired TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spend_buckets (
    key TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    nano INTEGER NOT NULL,
    PRIMARY KEY (key, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS open_reservations (
    id TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    lines TEXT NOT NULL
) WITHOUT ROWID;
DROP INDEX IF EXISTS open_reservations_by_expiry;
"""
# The tables SCHEMA creates, and those of the earlier layout migrated below (what a reader that
# may not migrate tells a store file by).
TABLES = frozenset({"budget_lines", "spend_buckets", "open_reservations"})
EARLIER_TABLES = frozenset({"reservations", "reservation_lines"})
# The earlier layout: a reservation's amount per line in a row of its own.
OLD_TABLES = "SELECT count(*) FROM sqlite_master WHERE name = 'reservation_lines'"
OLD_RESERVATIONS = """
SELECT r.id, r.expires_at, l.key, l.amount_nano
FROM reservations AS r LEFT JOIN reservation_lines AS l ON l.reservation_id = r.id
ORDER BY r.id, l.key
"""
DROP_OLD_TABLES = ("DROP TABLE reservation_lines", "DROP TABLE reservations")

# Both add the amount to the line's reservations and return the line's totals after that: the
# caller checks the limit and rolls the whole transaction back on a refusal. A line is new once
# per window; the plain UPDATE is tried first, as it measured faster than the upsert's conflict
# path (the insert attempt, then the update).
#
# A line past its expiry that no reservation holds is gone, whether or not the sweep (once a
# minute) has deleted its row yet: reserving on its key again starts it afresh, as ``state`` and
# ``scan`` already read it and as Redis (whose key expired) and the memory store do. A calendar
# key is met again after its expiry when a policy's time zone changes (``day:2025-01-01`` runs
# until 08:00 UTC on the 2nd in Los Angeles): the old spend counted until the sweep ran, then
# vanished, and a call could be refused by spend that ``budget status`` showed as none.
# (Every right-hand side reads the row as it was, so ``expires_at`` is the old expiry throughout.)
# Whether the line is such a stale one is decided once, by this subquery on the line's row, with
# ``now`` bound once; it resets the line's spend and fired thresholds together.
_RESET_IF_STALE = """(
        SELECT CASE WHEN stale THEN 0 ELSE spent_nano END, CASE WHEN stale THEN '' ELSE fired END
        FROM (SELECT expires_at <= ? AND reserved_nano = 0 AS stale)
    )"""
RESERVE_LINE = f"""
INSERT INTO budget_lines
    (key, limit_nano, reserved_nano, expires_at, bucket_seconds, span_seconds, thresholds)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    limit_nano = excluded.limit_nano,
    (spent_nano, fired) = {_RESET_IF_STALE},
    reserved_nano = reserved_nano + excluded.reserved_nano,
    thresholds = excluded.thresholds,
    expires_at = max(expires_at, excluded.expires_at)
RETURNING spent_nano, reserved_nano
"""
RESERVE_KNOWN_LINE = f"""
UPDATE budget_lines SET
    limit_nano = ?,
    (spent_nano, fired) = {_RESET_IF_STALE},
    reserved_nano = reserved_nano + ?,
    thresholds = ?,
    expires_at = max(expires_at, ?)
WHERE key = ?
RETURNING spent_nano, reserved_nano
"""
SUM_BUCKETS = "SELECT coalesce(sum(nano), 0) FROM spend_buckets WHERE key = ? AND bucket >= ?"
INSERT_RESERVATION = "INSERT INTO open_reservations (id, expires_at, lines) VALUES (?, ?, ?)"
# A reserve that reclaimed expired reservations keeps that spend when it is itself refused.
SAVEPOINT_LINES = "SAVEPOINT reserve_lines"
ROLLBACK_LINES = "ROLLBACK TO reserve_lines"
TAKE_RESERVATION = "DELETE FROM open_reservations WHERE id = ? RETURNING lines"
RENEW_RESERVATION = (
    "UPDATE open_reservations SET expires_at = max(expires_at, ?) WHERE id = ? AND expires_at > ?"
)
# A rolling line is kept for as long as the spend settled now counts (a whole span from now):
# the expiry set when the reservation was made would drop spend settled late in a long call.
# Parameters, in order: amount, actual, actual, now, key. Plain ``?`` bound from a
# tuple: named ones (a dict per line) measured slower to bind, and numbered ones (``?1``)
# bound from a sequence are deprecated by Python 3.12 and refused by 3.14.
SETTLE_LINE = """
UPDATE budget_lines SET
    reserved_nano = reserved_nano - ?,
    spent_nano = spent_nano + (CASE WHEN bucket_seconds IS NULL THEN ? ELSE 0 END),
    expires_at = (CASE WHEN bucket_seconds IS NULL OR ? = 0 THEN expires_at
                  ELSE max(expires_at, ? + span_seconds + bucket_seconds) END)
WHERE key = ?
RETURNING limit_nano, spent_nano, reserved_nano, bucket_seconds, span_seconds, thresholds, fired
"""
ADD_BUCKET = """
INSERT INTO spend_buckets (key, bucket, nano) VALUES (?, ?, ?)
ON CONFLICT (key, bucket) DO UPDATE SET nano = nano + excluded.nano
"""
SET_FIRED = "UPDATE budget_lines SET fired = ? WHERE key = ?"
EXPIRED_RESERVATIONS = "SELECT id, lines FROM open_reservations WHERE expires_at <= ? LIMIT 1000"
EXPIRED_LINES = "SELECT lines FROM open_reservations WHERE expires_at <= ?"
# A line past its window still holds the reservations made on it (a long call): it is live.
SELECT_LINE = (
    "SELECT key, limit_nano, spent_nano, reserved_nano, bucket_seconds, span_seconds"
    " FROM budget_lines WHERE key = ? AND (expires_at > ? OR reserved_nano > 0)"
)
SCAN_LINES = (
    "SELECT key, limit_nano, spent_nano, reserved_nano, bucket_seconds, span_seconds"
    " FROM budget_lines WHERE key >= ? AND key < ? AND (expires_at > ? OR reserved_nano > 0)"
    " ORDER BY key"
)
SWEEP = (
    "DELETE FROM budget_lines WHERE expires_at <= ? AND reserved_nano = 0",
    "DELETE FROM spend_buckets WHERE key NOT IN (SELECT key FROM budget_lines)",
)


def migrate(cur: _Cursor) -> None:
    """Move the reservations of the earlier layout into ``open_reservations``, then drop it.

    Runs inside the opening transaction, so another process sees the file either before or
    after the move, never half-way. The amounts held on ``budget_lines`` are not touched: each
    moved reservation settles, releases or is reclaimed exactly as before.
    """
    moved: dict[str, tuple[float, list[tuple[str, int]]]] = {}
    for rid, expires_at, key, amount in cur.execute(OLD_RESERVATIONS).fetchall():
        held = moved.setdefault(rid, (expires_at, []))[1]
        if key is not None:
            held.append((key, amount))
    cur.executemany(
        INSERT_RESERVATION,
        [(rid, expires_at, json.dumps(held)) for rid, (expires_at, held) in moved.items()],
    )
    for statement in DROP_OLD_TABLES:
        cur.execute(statement)
