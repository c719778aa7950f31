"""SQLite receipts when the database is removed, locked by another process or cannot open."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import policyroute
from policyroute.accounting import _clear_default_cache
from policyroute.api import clear_cache
from policyroute.costs.sinks import SqliteSink
from policyroute.errors import ReceiptError
from policyroute.testing import FakeProvider, Reply, Usage

POLICY = """
policyroute: 1
name: sqlite-faults
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_SQLITE_FAULT_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
receipts: {{sink: sqlite, path: {receipts}}}
defaults: {{max_tokens: 10}}
"""
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_SQLITE_FAULT_KEY", "sk-sqlitefault-0123456789")
    with FakeProvider() as provider:
        provider.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
        yield provider
    clear_cache()
    _clear_default_cache()


def _rows(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT kind, cost FROM receipts ORDER BY id").fetchall()
    conn.close()
    return rows


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_a_database_removed_while_open_is_created_again(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite3"
    sink = SqliteSink(db)
    sink.write({"kind": "call", "cost": "0.1"})
    _remove_database(db)

    sink.write({"kind": "call", "cost": "0.2"})
    sink.close()

    assert _rows(db) == [("call", "0.2")]


def test_a_database_replaced_while_open_gets_the_next_rows(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite3"
    sink = SqliteSink(db)
    sink.write({"kind": "call", "cost": "0.1"})
    os.rename(db, tmp_path / "old.sqlite3")  # rotated away
    SqliteSink(db).close()  # and a fresh database made in its place

    sink.write({"kind": "call", "cost": "0.2"})
    sink.close()

    assert _rows(db) == [("call", "0.2")]


def test_a_database_locked_by_another_process_is_a_receipt_error_naming_it(
    tmp_path: Path,
) -> None:
    db = tmp_path / "r.sqlite3"
    sink = SqliteSink(db, timeout=0.05)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(ReceiptError, match=f"cannot insert receipt into {db}: .*locked"):
            sink.write({"kind": "call", "cost": "0.1"})
    finally:
        holder.communicate("")
    sink.write({"kind": "call", "cost": "0.2"})  # usable again once the lock is gone
    sink.close()
    assert _rows(db) == [("call", "0.2")]


def test_a_policy_database_that_cannot_open_is_reported_and_the_answer_kept(
    tmp_path: Path, fp: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "blocker").write_text("")
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY.format(base=fp.openai_base, receipts="blocker/r.sqlite3"))

    with caplog.at_level(logging.ERROR, logger="policyroute.accounting"):
        response = policyroute.completion(policy=policy, messages=MESSAGES)

    assert response.choices[0].message.content == "hi"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    where = tmp_path / "blocker" / "r.sqlite3"
    assert all(f"SqliteSink {where}" in m and "cannot open receipt database" in m for m in errors)

    (tmp_path / "blocker").unlink()  # fixed while the process runs: the next call is recorded
    policyroute.completion(policy=policy, messages=MESSAGES)
    assert [kind for kind, _ in _rows(where)] == ["attempt", "call"]


def test_a_policy_database_path_that_is_a_directory_says_so(
    tmp_path: Path, fp: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    where = tmp_path / "r.sqlite3"
    where.mkdir()
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY.format(base=fp.openai_base, receipts="r.sqlite3"))

    with caplog.at_level(logging.ERROR, logger="policyroute.accounting"):
        response = policyroute.completion(policy=policy, messages=MESSAGES)

    assert response.choices[0].message.content == "hi"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    # Before: "unable to open database file", SQLite's word for any file it cannot open.
    assert len(errors) == 2
    assert all(f"cannot open receipt database {where}: it is a directory" in m for m in errors)

    where.rmdir()
    policyroute.completion(policy=policy, messages=MESSAGES)
    assert [kind for kind, _ in _rows(where)] == ["attempt", "call"]
