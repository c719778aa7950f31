"""`budget status` reads a SQLite store named under ``~`` where the calls charged it: the
home directory, as the store itself opens it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: home-store
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_HOME_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
budgets:
  - name: global
    limit_usd: 10
    window: 24h
store: {{backend: sqlite, path: ~/state/budgets.sqlite3}}
receipts: {{sink: none}}
defaults: {{max_tokens: 10}}
"""


def test_budget_status_reads_a_store_under_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import policyroute
    from policyroute.accounting import _clear_default_cache
    from policyroute.api import clear_cache
    from policyroute.testing import FakeProvider, Reply, Usage

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_HOME_KEY", "sk-test")
    path = tmp_path / "policy.yaml"
    try:
        with FakeProvider() as fp:
            # 7 input tokens at $0.001 + 3 output tokens at $0.002: $0.013.
            fp.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
            path.write_text(POLICY.format(base=fp.openai_base), encoding="utf-8")
            policyroute.completion(policy=path, messages=[{"role": "user", "content": "hello"}])
    finally:
        clear_cache()
        _clear_default_cache()
    assert (home / "state" / "budgets.sqlite3").is_file()
    assert not (tmp_path / "~").exists()
    capsys.readouterr()

    assert main(["budget", "status", str(path), "--format", "json"]) == 0

    out = capsys.readouterr()
    assert "does not exist" not in out.err
    (row,) = json.loads(out.out)
    assert Decimal(row["spent"]) == Decimal("0.013")
