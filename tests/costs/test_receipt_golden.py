"""Receipts are pinned byte for byte: the records' JSON lines and the JSON-lines files."""

from __future__ import annotations

import json
from pathlib import Path

from .golden_cases import GOLDEN, cases, render


def test_records_and_lines_match_the_golden_file(tmp_path: Path) -> None:
    records = list(cases())
    assert render(records, tmp_path) == GOLDEN.read_text(encoding="utf-8")


def test_records_are_plain_json_values() -> None:
    # The JSON line pins the bytes; this pins the Python values sinks other than JSON lines
    # see (a tuple where a list was, or a str subclass, would encode the same).
    for name, record in cases():
        line = json.dumps(record, ensure_ascii=False)
        assert json.loads(line) == record, name
        assert all(type(k) is str for k in record), name
