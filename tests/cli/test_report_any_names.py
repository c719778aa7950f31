"""`receipts report` prints any name a receipt carries, in every format.

A receipt's names (user, route, model) are read from JSON, where ``"\\ud800"`` is a valid
escape for a lone surrogate (a writer that cut a character in two). Such a name cannot be
written as UTF-8: the table and CSV reports failed as a whole with an internal error (exit 70)
over one receipt. It is now spelled ``\\ud800``, as policyroute's own receipt writers spell it,
and both spellings group together.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from policyroute.cli import main

LINES = [
    '{"kind": "call", "request_id": "r1", "cost": "0.5", "user": "a\\ud800b"}',
    # What SqliteSink and JsonlSink write for that user (utf8_safe).
    '{"kind": "call", "request_id": "r2", "cost": "0.25", "user": "a\\\\ud800b"}',
    '{"kind": "call", "request_id": "r3", "cost": "1", "user": "c\\udcffd", "route": "r"}',
]


@pytest.fixture
def receipts(tmp_path: Path) -> str:
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(LINES) + "\n", encoding="ascii")
    return str(path)


def test_table_shows_a_lone_surrogate_escaped(
    receipts: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["receipts", "report", receipts, "--by", "user"]) == 0
    out = capsys.readouterr().out
    out.encode("utf-8")  # printable as UTF-8, as a terminal or a pipe needs
    section = out.split("\n\n")[1].splitlines()  # the user section, after the total
    assert section[0].split()[0] == "user"
    rows = {line.split()[0]: line.split()[1] for line in section[2:]}
    assert rows == {"a\\ud800b": "2", "c\\udcffd": "1"}


def test_csv_and_json_agree_on_the_names(receipts: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receipts", "report", receipts, "--by", "user", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    users = {r["key"]: r["cost"] for r in rows if r["dimension"] == "user"}
    assert users == {"a\\ud800b": "0.750000", "c\\udcffd": "1.000000"}

    assert main(["receipts", "report", receipts, "--by", "user", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {k: v["cost"] for k, v in doc["by"]["user"].items()} == users
