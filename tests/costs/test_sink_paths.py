"""Sink paths as a policy file spells them: ``~`` is the home directory, not a folder named ~."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from policyroute import load_policy
from policyroute.accounting_.building import sinks_for
from policyroute.costs.sinks import JsonlSink, SqliteSink


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def test_a_jsonl_path_under_home_goes_to_the_home_directory(home: Path) -> None:
    sink = JsonlSink("~/receipts/{date}.jsonl")
    sink.write({"kind": "call", "ts": "2026-01-02T03:04:05+00:00"})
    sink.close()

    written = home / "receipts" / "2026-01-02.jsonl"
    assert json.loads(written.read_bytes())["kind"] == "call"
    assert not (home.parent / "~").exists()


def test_a_sqlite_path_under_home_goes_to_the_home_directory(home: Path) -> None:
    sink = SqliteSink("~/receipts.sqlite3")
    sink.write({"kind": "call", "request_id": "r-1"})
    sink.close()

    with sqlite3.connect(home / "receipts.sqlite3") as db:
        assert db.execute("SELECT request_id FROM receipts").fetchall() == [("r-1",)]
    db.close()
    assert not (home.parent / "~").exists()


POLICY = """
policyroute: 1
name: home-paths
models:
  a: {{model: openai/gpt-4o-mini}}
routes:
  - {{name: default, to: a}}
receipts: {receipts}
"""


@pytest.mark.parametrize(
    ("receipts", "where"),
    [
        ("{sink: jsonl, path: '~/r/{date}.jsonl'}", "r/2026-01-02.jsonl"),
        ("{sink: sqlite, path: '~/r.sqlite3'}", "r.sqlite3"),
    ],
)
def test_a_policy_path_under_home_is_expanded(home: Path, receipts: str, where: str) -> None:
    path = home.parent / "policy.yaml"
    path.write_text(POLICY.format(receipts=receipts))

    (sink,) = sinks_for(load_policy(path))
    sink.write({"kind": "call", "ts": "2026-01-02T03:04:05+00:00"})
    sink.close()

    assert (home / where).stat().st_size > 0
    assert not (home.parent / "~").exists()
