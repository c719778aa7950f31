"""The status table shows any scope value on one aligned row.

Scopes are request metadata, written as given: a newline in one split its row across two
lines, an escape sequence reached the operator's terminal as is, an empty value left a blank
cell, and wide (CJK) characters pushed the columns after them out of line. The table escapes
control characters, shows an empty scope as ``""`` and pads by terminal width (combining marks
take none); JSON and CSV keep the exact text.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from decimal import Decimal

from policyroute.budgets import format_status
from policyroute.budgets.status import BudgetStatusRow

SCOPES = ["u1", "x\ny", "\x1b[2Jclear", "", "汉字用户", "tab\there", "e\u0301quipe"]


def _rows() -> list[BudgetStatusRow]:
    one = Decimal(1)
    return [
        BudgetStatusRow("users", s, "day:2026-03-29", one, Decimal(0), Decimal(0), one)
        for s in SCOPES
    ]


def _columns(text: str) -> int:
    def cells(ch: str) -> int:
        if unicodedata.combining(ch):
            return 0  # drawn on the character before it
        return 2 if unicodedata.east_asian_width(ch) in "WF" else 1

    return sum(cells(ch) for ch in text)


def test_every_scope_is_one_row_without_control_characters() -> None:
    lines = format_status(_rows()).split("\n")
    assert len(lines) == 1 + len(SCOPES)
    assert all(ch.isprintable() for line in lines for ch in line)
    scopes = [line.split("  ")[1].strip() for line in lines[1:]]
    expected = ["u1", "x\\ny", "\\x1b[2Jclear", '""', "汉字用户", "tab\\there", "e\u0301quipe"]
    assert scopes == expected


def test_columns_line_up_in_terminal_cells() -> None:
    lines = format_status(_rows()).split("\n")
    # Where the window column starts, in terminal cells, on every row.
    starts = {
        _columns(line[: line.index("day:" if "day:" in line else "window")]) for line in lines
    }
    assert len(starts) == 1


def test_csv_keeps_the_exact_scopes() -> None:
    rows = list(csv.DictReader(io.StringIO(format_status(_rows(), "csv"))))
    assert [r["scope"] for r in rows] == SCOPES
