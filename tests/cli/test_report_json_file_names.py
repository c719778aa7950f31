"""`receipts report --format json` spells a file name that is not valid UTF-8 one way, wherever
it appears: ``caf\\udce9.jsonl``, as the table, stderr and ``unread_files`` spell it.

Such a name reaches Python as lone surrogates (``surrogateescape``). ``problems`` carried them
as JSON ``\\udce9`` escapes (which strict JSON readers refuse, and which read back as another
string) while ``unread_files`` and ``error`` carried the escaped spelling, so one file had two
names in one document.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policyroute.cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")

BAD_LINE = b'{"kind": "call", "request_id": "r1", "cost": "not money"}\n'
GOOD_LINE = b'{"kind": "call", "request_id": "r2", "cost": "0.5"}\n'


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A file read with a bad line, a missing file, and a SQLite write-ahead log named
    without its database: each named with the byte 0xe9, which is not UTF-8."""
    monkeypatch.chdir(tmp_path)
    try:
        with open(b"caf\xe9-read.jsonl", "wb") as fh:
            fh.write(BAD_LINE + GOOD_LINE)
    except (OSError, UnicodeError):
        pytest.skip("this file system takes no file name that is not UTF-8")
    with open(b"caf\xe9.sqlite3", "wb") as fh:
        fh.write(b"SQLite format 3\x00")
    with open(b"caf\xe9.sqlite3-wal", "wb") as fh:
        fh.write(b"\x00" * 32)
    names = (b"caf\xe9-read.jsonl", b"caf\xe9-gone.jsonl", b"caf\xe9.sqlite3-wal")
    return [os.fsdecode(name) for name in names]


def test_each_file_name_has_one_spelling(
    inputs: list[str], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["receipts", "report", *inputs, "--format", "json"]) == 2
    text = capsysbinary.readouterr().out.decode("utf-8")
    doc = json.loads(text)
    assert doc["total"]["calls"] == 1  # the good line of the file read

    files = {problem["file"] for problem in doc["problems"]}
    assert files == {"caf\\udce9-read.jsonl", "caf\\udce9-gone.jsonl", "caf\\udce9.sqlite3-wal"}
    assert {unread["file"] for unread in doc["unread_files"]} == {"caf\\udce9-gone.jsonl"}
    (wal,) = [p for p in doc["problems"] if p["file"].endswith("-wal")]
    assert "name caf\\udce9.sqlite3" in wal["message"]
    # No lone surrogate anywhere: every mention of the names is the escaped spelling.
    mentions = [s for s in _strings(doc) if "caf" in s]
    assert mentions, doc
    for mention in mentions:
        mention.encode("utf-8")  # raises on a lone surrogate
        assert "caf\\udce9" in mention, mention
