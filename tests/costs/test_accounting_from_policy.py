"""PolicyAccounting.from_policy: the policy's budgets with receipts sent where the caller says,
through ChatPolicyRoute against the fake provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policyroute import BudgetExceeded, ChatPolicyRoute, load_policy_text
from policyroute.accounting import PolicyAccounting, ThresholdEvent
from policyroute.costs.sinks import CallableSink
from policyroute.testing import FakeProvider, Reply, Usage

POLICY = """
policyroute: 1
name: from-policy
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 1000}}
routes:
  - name: default
    to: a
budgets:
  - name: daily
    limit_usd: {limit}
    window: day
    warn_at: [0.5]
store: {{backend: memory}}
defaults: {{max_tokens: 5}}
"""


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_TEST_KEY", "sk-test")
    with FakeProvider() as provider:
        provider.set_default("*", Reply(text="ok", usage=Usage(prompt=5, completion=2)))
        yield provider


def test_receipts_go_to_the_given_sinks_and_the_budget_still_holds(
    fp: FakeProvider, tmp_path: Path
) -> None:
    policy = load_policy_text(POLICY.format(base=fp.openai_base, limit="0.02"))
    seen: list[dict[str, Any]] = []
    crossed: list[ThresholdEvent] = []
    acct = PolicyAccounting.from_policy(
        policy, sinks=[CallableSink(seen.append)], on_threshold=crossed.append
    )
    llm = ChatPolicyRoute(policy=policy, accounting=acct)

    assert llm.invoke("hi").content == "ok"  # 7 tokens at $0.001: $0.007 of $0.02

    assert [r["kind"] for r in seen] == ["attempt", "call"]
    assert seen[0]["budgets"][0]["budget"] == "daily"
    assert not (tmp_path / ".policyroute").exists()  # the policy's own JSONL sink is replaced
    llm.invoke("hi")  # $0.014: past half the limit
    assert [event.threshold for event in crossed] == [0.5]
    with pytest.raises(BudgetExceeded):
        llm.invoke("hi")  # worst case $0.010 more would pass $0.02
    assert len(fp.requests) == 2


def test_without_sinks_the_policys_own_sink_is_used(fp: FakeProvider, tmp_path: Path) -> None:
    policy = load_policy_text(POLICY.format(base=fp.openai_base, limit="10"))
    acct = PolicyAccounting.from_policy(policy)
    ChatPolicyRoute(policy=policy, accounting=acct).invoke("hi")
    written = list((tmp_path / ".policyroute" / "receipts").glob("*.jsonl"))
    assert len(written) == 1
    assert written[0].read_text().count("\n") == 2
