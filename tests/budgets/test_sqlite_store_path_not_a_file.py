"""A SQLite budget store whose path names a directory or a device says so: SQLite's own
"unable to open database file" and "disk I/O error" name neither. A policy's ``store.path``
met at the first call, as a user meets it."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import respx

import policyroute
from policyroute.budgets.stores.sqlite import SQLiteStore
from policyroute.errors import BudgetStoreError
from policyroute.policy.loader import load_policy_text

POLICY = """
policyroute: 1
name: store-path
models:
  m: {{model: openai/gpt-4o-mini, api_base: "https://api.example.test/v1", api_key: "${{K}}"}}
routes:
  - name: default
    to: m
budgets:
  - name: daily
    limit_usd: 10
    window: day
defaults: {{max_tokens: 16}}
store: {{backend: sqlite, path: "{path}"}}
receipts: {{sink: none}}
"""


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(BudgetStoreError) as refused:
        SQLiteStore(tmp_path)
    assert str(refused.value).endswith(
        "(it is a directory: store.path names the database file itself)"
    )


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_a_device_is_named_as_one() -> None:
    with pytest.raises(BudgetStoreError) as refused:
        SQLiteStore("/dev/null")
    assert "(it is a device or a socket: store.path names the database file itself)" in str(
        refused.value
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_a_pipe_is_named_as_one(tmp_path: Path) -> None:
    pipe = tmp_path / "budgets.sqlite3"
    os.mkfifo(pipe)
    with pytest.raises(BudgetStoreError) as refused:
        SQLiteStore(pipe)
    assert str(refused.value).endswith("(it is a pipe: store.path names the database file itself)")


def test_a_call_on_a_policy_whose_store_is_a_directory_is_refused_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("K", "sk-test")
    policy = load_policy_text(POLICY.format(path=tmp_path))
    with respx.mock(assert_all_called=False) as provider:
        route = provider.post("https://api.example.test/v1/chat/completions").mock(
            return_value=httpx.Response(500)
        )
        with pytest.raises(BudgetStoreError, match="it is a directory"):
            policyroute.completion(policy=policy, messages=[{"role": "user", "content": "hi"}])
    assert not route.called
