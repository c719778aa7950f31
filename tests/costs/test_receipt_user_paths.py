"""A receipt's ``user`` reads ``metadata.user.id`` as routing and budgets read it: nested first
(``{"user": {"id": "u1"}}``), else a flat key spelling the path (``{"user.id": "u1"}``, as
OpenTelemetry-style metadata writes it). A flat key left ``user`` empty while the budget
``per: metadata.user.id`` charged that very user, and a nested one made it the text of the
whole mapping, so ``receipts report --by user`` could not say whose spend it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.cli import main
from policyroute.testing import FakeProvider

from .helpers import FAKE_A_POLICY

pytestmark = pytest.mark.timeout(60)

BUDGET = """budgets:
  - name: per-user
    per: metadata.user.id
    limit_usd: 10
    window: day
store: {backend: memory}
"""


def _policy(fake_a: FakeProvider, receipts: Path, *, budget: bool) -> str:
    text = FAKE_A_POLICY.format(base=fake_a.openai_base).replace(
        "receipts: {sink: none}", f"receipts: {{path: '{receipts}'}}"
    )
    return text + BUDGET if budget else text


def _receipts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


CASES: list[tuple[dict[str, Any], str | None]] = [
    ({"user.id": "u-flat"}, "u-flat"),
    ({"user": {"id": "u-nested"}}, "u-nested"),
    ({"user": {"id": "u-nested"}, "user.id": "u-flat"}, "u-nested"),  # nested first
    ({"user": {"name": "x"}, "user.id": "u-flat"}, "u-flat"),  # nested path holds nothing
    ({"user": "bob", "user.id": "u-flat"}, "bob"),  # metadata.user, as before
    ({"user_id": "u-9", "user.id": "u-flat"}, "u-9"),  # metadata.user_id, as before
    ({"user": {"name": "x"}}, None),  # a mapping is not a user
]


@pytest.mark.parametrize(("metadata", "user"), CASES)
def test_the_receipt_user_reads_a_flat_dotted_key(
    fake_a: FakeProvider, tmp_path: Path, metadata: dict[str, Any], user: str | None
) -> None:
    receipts = tmp_path / "receipts.jsonl"
    llm = ChatPolicyRoute(policy=_policy(fake_a, receipts, budget=False))
    llm.invoke("hi", config={"metadata": metadata})
    assert [(r["kind"], r["user"]) for r in _receipts(receipts)] == [
        ("attempt", user),
        ("call", user),
    ]


def test_the_user_is_the_one_the_budget_charged(
    fake_a: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipts = tmp_path / "receipts.jsonl"
    policy = _policy(fake_a, receipts, budget=True)
    messages = [{"role": "user", "content": "hi"}]
    policyroute.completion(policy=policy, messages=messages, metadata={"user.id": "u1"})
    policyroute.completion(policy=policy, messages=messages, metadata={"user": {"id": "u1"}})
    policyroute.completion(policy=policy, messages=messages, metadata={"user.id": "u2"})
    records = _receipts(receipts)
    for record in records:
        if record["kind"] == "attempt":
            assert [b["scope"] for b in record["budgets"]] == [record["user"]]
    assert [r["user"] for r in records if r["kind"] == "call"] == ["u1", "u1", "u2"]

    assert main(["receipts", "report", str(receipts), "--by", "user", "--format", "json"]) == 0
    users = json.loads(capsys.readouterr().out)["by"]["user"]
    assert {name: row["calls"] for name, row in users.items()} == {"u1": 2, "u2": 1}


def test_a_budget_per_a_user_id_path_names_the_user(fake_a: FakeProvider, tmp_path: Path) -> None:
    """A budget scoped by another path ending in a user's id names the user, flat or nested."""
    receipts = tmp_path / "receipts.jsonl"
    policy = _policy(fake_a, receipts, budget=True).replace(
        "metadata.user.id", "metadata.end_user.id"
    )
    llm = ChatPolicyRoute(policy=policy)
    llm.invoke("hi", config={"metadata": {"end_user.id": "e1"}})
    llm.invoke("hi", config={"metadata": {"end_user": {"id": "e2"}}})
    calls = [r for r in _receipts(receipts) if r["kind"] == "call"]
    assert [(r["metadata"], r["user"]) for r in calls] == [
        ({"end_user.id": "e1"}, "e1"),
        ({"end_user.id": "e2"}, "e2"),
    ]
