"""The table names a read-only reader tells a budget store file by are the ones the store's
schema creates."""

from __future__ import annotations

import sqlite3

from policyroute.budgets.stores._sqlite_sql import SCHEMA, TABLES


def test_tables_are_those_the_schema_creates() -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(SCHEMA)
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        conn.close()
    assert {name for (name,) in rows} == TABLES
