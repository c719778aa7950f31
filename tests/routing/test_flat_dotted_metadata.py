"""A condition on a metadata path (``metadata.user.id``) reads the nested path first and, when
that holds nothing, a flat key holding the rest of the path, dots and all (``"user.id"``, as
OpenTelemetry-style metadata and many tracing setups write it). A flat key never matched, and
nothing said so. Routing at run time, ``policyroute explain`` and budget scopes read the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from policyroute import ChatPolicyRoute
from policyroute.cli import main
from policyroute.execution.hooks import NullAccounting
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(60)

# Twelve exact matches on one path (what the compiler indexes), a regex on another, and a test
# of a deeper path whose middle key is flat.
USERS = [f"u{i}" for i in range(12)]

_MODEL = """
  {alias}:
    model: openai/fake-{alias}
    api_base: "{base}"
    api_key: "${{POLICYROUTE_TEST_KEY}}"
    price: {{input_per_mtok: 1, output_per_mtok: 1}}
"""


def policy_text(base: str) -> str:
    models = "".join(_MODEL.format(alias=a, base=base) for a in ("user", "beta", "gold", "other"))
    routes = "".join(
        f"\n  - name: user-{u}\n    when: {{metadata.user.id: {u}}}\n    to: user" for u in USERS
    )
    return f"""policyroute: 1
name: dotted-metadata
models:{models}
routes:{routes}
  - name: beta
    when: {{metadata.app.release: {{regex: "^beta"}}}}
    to: beta
  - name: gold
    when: {{metadata.account.plan.tier: gold}}
    to: gold
  - name: default
    to: other
receipts: {{sink: none}}
"""


CASES: list[tuple[dict[str, Any], str]] = [
    ({"user": {"id": "u3"}}, "user-u3"),  # nested, as before
    ({"user.id": "u3"}, "user-u3"),  # flat
    ({"user.id": "u11", "user": {"name": "x"}}, "user-u11"),  # nested path holds nothing
    ({"user": {"id": "nobody"}, "user.id": "u3"}, "default"),  # the nested value wins
    ({"user": "bob", "user.id": "u5"}, "user-u5"),  # user is no mapping: the flat key
    ({"app.release": "beta-2"}, "beta"),
    ({"account": {"plan.tier": "gold"}}, "gold"),  # flat below a nested level
    ({"account.plan.tier": "gold"}, "gold"),
    ({"account.plan": {"tier": "gold"}}, "default"),  # only the whole rest is one flat key
    ({"user.id": None}, "default"),  # null is absent
]


@pytest.fixture
def llm(fp: FakeProvider) -> ChatPolicyRoute:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    fp.reset()
    fp.set_default("*", Reply(text="fine"))
    return ChatPolicyRoute(policy=policy_text(fp.openai_base), accounting=NullAccounting())


@pytest.mark.parametrize(("metadata", "route"), CASES)
def test_a_call_routes_on_flat_dotted_metadata_keys(
    llm: ChatPolicyRoute, metadata: dict[str, Any], route: str
) -> None:
    answer = llm.invoke("hi", config={"metadata": metadata})
    assert answer.response_metadata["policyroute"]["route"] == route


@pytest.mark.parametrize(("metadata", "route"), CASES)
def test_explain_agrees_with_routing_at_run_time(
    fp: FakeProvider,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    metadata: dict[str, Any],
    route: str,
) -> None:
    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(fp.openai_base), encoding="utf-8")
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"messages": "hi", "metadata": metadata}), encoding="utf-8")
    assert main(["explain", str(policy), "--request", str(request), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["route"] == route


def test_a_budget_per_a_metadata_path_scopes_and_reports_a_flat_key(
    fp: FakeProvider, tmp_path: Path
) -> None:
    """A budget ``per: metadata.user.id`` keeps one budget per user whether the id comes
    nested or flat, and the receipt reports the value it was scoped by."""
    from policyroute.api import clear_cache

    os.environ.setdefault("POLICYROUTE_TEST_KEY", "sk-fake")
    fp.reset()
    fp.set_default("*", Reply(text="fine"))
    receipts = tmp_path / "receipts.jsonl"
    budget = """budgets:
  - name: per-user
    per: metadata.user.id
    limit_usd: 10
    window: day
store: {backend: memory}
defaults: {max_tokens: 50}
"""
    policy = policy_text(fp.openai_base).replace(
        "receipts: {sink: none}", f"receipts: {{path: '{receipts}'}}\n{budget}"
    )
    llm = ChatPolicyRoute(policy=policy)
    try:
        llm.invoke("hi", config={"metadata": {"user.id": "u-flat"}})
        llm.invoke("hi", config={"metadata": {"user": {"id": "u-nested"}}})
    finally:
        clear_cache()
    records = [json.loads(line) for line in receipts.read_text(encoding="utf-8").splitlines()]
    attempts = [r for r in records if r["kind"] == "attempt"]
    assert [[b["scope"] for b in a["budgets"]] for a in attempts] == [["u-flat"], ["u-nested"]]
    reported = [{"user.id": "u-flat"}, {"user.id": "u-nested"}]
    assert [r["metadata"] for r in records if r["kind"] == "call"] == reported
    assert [a["metadata"] for a in attempts] == reported
