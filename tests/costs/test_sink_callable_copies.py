"""A user's callable that changes the receipt it is given changes no other sink's receipt."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from policyroute import load_policy
from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink, JsonlSink, MultiSink
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider

from .helpers import FAKE_A_POLICY, jsonl_records


def enrich(record: Mapping[str, Any]) -> None:
    """What a user's forwarder may do before shipping a receipt: edit it in place."""
    assert isinstance(record, dict)
    record["cost"] = "overwritten"
    record.pop("request_id", None)
    record.setdefault("metadata", {})["shipped_by"] = "forwarder"
    record["tags"] = ["forwarded"]


async def aenrich(record: Mapping[str, Any]) -> None:
    enrich(record)


def _record() -> dict[str, Any]:
    return {
        "kind": "call",
        "request_id": "r-1",
        "cost": "0.000100",
        "metadata": {"team": "x"},
        "tags": ["prod"],
        "budgets": [{"name": "daily", "charged": "0.000100"}],
    }


def test_a_callable_editing_its_record_leaves_the_next_sinks_record_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.jsonl"
    record = _record()

    MultiSink([CallableSink(enrich), JsonlSink(path)]).write(record)

    assert record == _record()
    assert json.loads(path.read_bytes()) == _record()


@pytest.mark.asyncio
@pytest.mark.parametrize("blocking", [False, True])
@pytest.mark.parametrize("fn", [enrich, aenrich])
async def test_an_awaited_callable_editing_its_record_leaves_it_alone(
    tmp_path: Path, fn: Any, blocking: bool
) -> None:
    record = _record()

    await CallableSink(fn, blocking=blocking).awrite(record)

    assert record == _record()


def test_each_callable_gets_the_record_as_built(tmp_path: Path) -> None:
    seen: list[Mapping[str, Any]] = []

    MultiSink([CallableSink(enrich), CallableSink(seen.append)]).write(_record())

    assert seen == [_record()]


def test_the_receipts_of_a_call_reach_the_file_as_built_whatever_a_callable_does(
    tmp_path: Path, fake_a: FakeProvider
) -> None:
    policy_path = tmp_path / "p.yaml"
    policy_path.write_text(FAKE_A_POLICY.format(base=fake_a.openai_base))
    policy = load_policy(policy_path)
    receipts = tmp_path / "r.jsonl"
    shipped: list[Mapping[str, Any]] = []

    def forward(record: Mapping[str, Any]) -> None:
        enrich(record)
        shipped.append(record)

    acct = PolicyAccounting(policy, guard=None, sinks=[CallableSink(forward), JsonlSink(receipts)])
    answer = ChatPolicyRoute(policy=policy, accounting=acct).invoke("hello")

    written = jsonl_records(receipts)
    assert [r["kind"] for r in written] == ["attempt", "call"]
    assert all(r["cost"] == "0.013000" for r in written)
    request_id = answer.response_metadata["policyroute"]["request_id"]
    assert all(r["request_id"] == request_id for r in written)
    assert all(r["tags"] == [] and "shipped_by" not in r["metadata"] for r in written)
    assert [r["cost"] for r in shipped] == ["overwritten", "overwritten"]
    assert not acct.unwritten


def test_an_async_callable_raising_a_receipt_error_keeps_it_as_raised() -> None:
    # A forwarder that writes to several places says which refused (SinksRefusedError); the
    # async path must pass that on as the sync path does, not wrap it and lose ``refused``.
    from policyroute.errors import SinksRefusedError

    async def forward(record: Any) -> None:
        raise SinksRefusedError("collector down", refused=["collector"])

    sink = CallableSink(forward)
    with pytest.raises(SinksRefusedError) as caught:
        asyncio.run(sink.awrite({"kind": "call"}))
    assert caught.value.refused == ("collector",)
