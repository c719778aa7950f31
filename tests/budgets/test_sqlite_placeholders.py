"""The SQLite store's statements bind parameters in ways every supported Python accepts.

Python 3.12 deprecates numbered placeholders (``?1``) bound from a sequence, and 3.14 refuses
them: each statement uses plain ``?`` or names (``:key``), never numbers.
"""

from __future__ import annotations

import re

from policyroute.budgets.stores import _sqlite_sql as sql

_NUMBERED = re.compile(r"\?\d")


def test_no_statement_uses_numbered_placeholders() -> None:
    statements = {
        name: value
        for name, value in vars(sql).items()
        if name.isupper() and isinstance(value, str)
    }
    assert "SETTLE_LINE" in statements
    assert {name for name, text in statements.items() if _NUMBERED.search(text)} == set()
