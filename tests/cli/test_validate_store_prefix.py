"""`policyroute validate` warns that ``store.prefix`` does nothing outside Redis.

Only the Redis store reads ``prefix``; two policies sharing one SQLite file with different
prefixes still share the spend of budgets they name alike, and nothing said so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: prefixed
models:
  mini: {{model: openai/gpt-4o-mini}}
budgets:
  - {{name: daily, limit_usd: 2, window: day}}
routes:
  - {{name: default, to: mini}}
defaults: {{max_tokens: 100}}
store:
{store}
"""


def _validate(tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(store=store), encoding="utf-8")
    main(["validate", "--format", "json", str(path)])
    doc = json.loads(capsys.readouterr().out)
    diagnostics: list[dict] = doc["files"][0]["diagnostics"]
    return diagnostics


def test_prefix_on_the_default_sqlite_store_warns_and_says_how_to_keep_policies_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _validate(tmp_path, "  path: shared.sqlite3\n  prefix: team-a", capsys)
    assert [(d["code"], d["severity"], d["path"], d["line"]) for d in found] == [
        ("PR133", "warning", "store.prefix", 12)
    ]
    assert "sqlite backend" in found[0]["message"]
    assert "separate SQLite file" in found[0]["hint"]
    assert "distinct names" in found[0]["hint"]


def test_prefix_on_the_memory_store_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _validate(tmp_path, "  backend: memory\n  prefix: team-a", capsys)
    assert [(d["code"], d["path"]) for d in found] == [("PR133", "store.prefix")]
    assert "memory backend" in found[0]["message"]


def test_prefix_on_a_redis_store_is_read_and_not_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = "  backend: redis\n  url: redis://localhost:6379/0\n  prefix: team-a"
    assert _validate(tmp_path, store, capsys) == []


def test_the_text_report_names_the_backend_and_the_remedy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(store="  prefix: team-a"), encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    assert main(["validate", "--strict", str(path)]) == 1
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"{path}:11:3 store.prefix: store.prefix does nothing with the sqlite")
    assert "own store.path (a separate SQLite file)" in line
    assert line.endswith("[PR133]")
