"""policyroute.completion enforces the policy's budgets and writes its receipts by default."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import policyroute
from policyroute.api import clear_cache
from policyroute.testing import FakeProvider, Reply, Usage

POLICY = """
policyroute: 1
name: api-accounting
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
budgets:
  - name: daily
    per: metadata.user_id
    limit_usd: {limit}
    window: day
store: {{backend: sqlite, path: state/budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts/calls.jsonl}}
defaults: {{max_tokens: 10}}
"""

MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)  # the policy's store and receipt paths are relative to the cwd
    monkeypatch.setenv("PR_TEST_KEY", "sk-test")
    with FakeProvider() as provider:
        yield provider
    clear_cache()
    from policyroute.accounting import _clear_default_cache

    _clear_default_cache()


def _write_policy(tmp_path: Path, fp: FakeProvider, limit: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=fp.openai_base, limit=limit))
    return path


def _receipts(tmp_path: Path) -> list[dict[str, object]]:
    lines = (tmp_path / "receipts" / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_completion_charges_the_budget_and_writes_receipts(
    tmp_path: Path, fp: FakeProvider
) -> None:
    fp.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
    policy = _write_policy(tmp_path, fp, "1.00")

    response = policyroute.completion(policy=policy, messages=MESSAGES, metadata={"user_id": "u1"})

    assert response.choices[0].message.content == "hi"
    summary = response._hidden_params["policyroute"]
    # 7 input tokens at $0.001 + 3 output tokens at $0.002
    assert Decimal(summary["cost"]) == Decimal("0.013")
    kinds = [(r["kind"], r["status"]) for r in _receipts(tmp_path)]
    assert kinds == [("attempt", "ok"), ("call", "ok")]
    call = _receipts(tmp_path)[1]
    assert call["cost"] == "0.013000"
    assert call["attempts"] == 1


def test_completion_refuses_before_sending_when_the_budget_cannot_cover_the_worst_case(
    tmp_path: Path, fp: FakeProvider
) -> None:
    # Worst case: the prompt's tokens at $0.001 plus 10 output tokens at $0.002 > $0.02.
    policy = _write_policy(tmp_path, fp, "0.02")

    with pytest.raises(policyroute.BudgetExceeded) as info:
        policyroute.completion(policy=policy, messages=MESSAGES, metadata={"user_id": "u2"})

    assert info.value.budget == "daily"
    assert info.value.scope == "u2"
    assert fp.requests == []  # nothing was sent
    statuses = [(r["kind"], r["status"]) for r in _receipts(tmp_path)]
    assert ("call", "refused") in statuses


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ("hello", "non-empty list"),
        ([], "(empty)"),
        ([{"content": "no role"}], "messages[0].role"),
        (["just text"], "messages[0]"),
        ([{"role": "user", "content": 42}], "messages[0].content"),
    ],
)
def test_malformed_messages_are_a_request_error_before_anything_is_sent(
    tmp_path: Path, fp: FakeProvider, messages: object, says: str
) -> None:
    policy = _write_policy(tmp_path, fp, "1.00")

    with pytest.raises(policyroute.RequestError, match=re.escape(says)):
        policyroute.completion(policy=policy, messages=messages)  # type: ignore[arg-type]

    assert fp.requests == []
