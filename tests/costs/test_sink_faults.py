"""Receipts survive what their contents and their sinks throw at them.

The documented behaviour (README, Receipts): once a provider has answered, a receipt that a
sink cannot take never fails the call; it is logged at ERROR naming the sink and its path and
kept in ``PolicyAccounting.unwritten``. A record with values JSON cannot encode as they are is
still written as one complete, valid JSON line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute.accounting import PolicyAccounting, _clear_default_cache
from policyroute.api import clear_cache
from policyroute.costs.receipts import format_usd
from policyroute.costs.sinks import JsonlSink, SqliteSink, encode_record
from policyroute.policy.compile import CompiledPolicy
from policyroute.testing import FakeProvider, Reply, Usage

POLICY = """
policyroute: 1
name: sink-faults
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_SINK_FAULT_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
budgets:
  - name: per-team
    per: metadata.team
    limit_usd: 100
    window: day
store: {{backend: memory}}
receipts: {{sink: jsonl, path: {receipts}}}
defaults: {{max_tokens: 10}}
"""
MESSAGES = [{"role": "user", "content": "hello there"}]
KEY = "sk-sinkfault-0123456789abcdef"


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_SINK_FAULT_KEY", KEY)
    with FakeProvider() as provider:
        provider.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
        yield provider
    clear_cache()
    _clear_default_cache()


def _policy(tmp_path: Path, fp: FakeProvider, receipts: str = "receipts/r.jsonl") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=fp.openai_base, receipts=receipts))
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    # strict JSON: NaN and Infinity are not JSON, and every line must be valid UTF-8
    return [
        json.loads(line.decode("utf-8"), parse_constant=_no_constant) for line in raw.splitlines()
    ]


def _no_constant(name: str) -> Any:
    raise AssertionError(f"{name} written into a receipt: not valid JSON")


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


class _Collect:
    blocking = False

    def __init__(self, into: list[dict[str, Any]]) -> None:
        self.into = into

    def write(self, record: dict[str, Any]) -> None:
        self.into.append(record)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- contents


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("u\ud800x", "u\\ud800x"),  # a lone surrogate: not encodable as UTF-8
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (Decimal("1.5"), "1.5"),
        (_Unprintable(), "<unprintable _Unprintable>"),
    ],
    ids=["lone-surrogate", "nan", "inf", "decimal", "unprintable"],
)
def test_odd_metadata_values_still_give_one_valid_line_per_receipt(
    tmp_path: Path, fp: FakeProvider, value: object, expected: str
) -> None:
    policy = _policy(tmp_path, fp)

    response = policyroute.completion(
        policy=policy, messages=MESSAGES, metadata={"user_id": value, "team": "t1"}
    )

    assert response.choices[0].message.content == "hi"
    records = _lines(tmp_path / "receipts" / "r.jsonl")
    assert [r["kind"] for r in records] == ["attempt", "call"]
    assert {r["user"] for r in records} == {expected}
    assert records[1]["cost"] == "0.013000"


@pytest.mark.parametrize(
    "value",
    ["t\udcff", float("nan"), _Unprintable(), {"nested": [float("-inf"), "\ud83d"]}],
    ids=["lone-surrogate", "nan", "unprintable", "nested"],
)
def test_a_budget_scope_value_json_cannot_encode_is_written_readably(value: object) -> None:
    line = encode_record({"kind": "call", "metadata": {"team": value}})

    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    record = json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    assert record["kind"] == "call"
    assert isinstance(record["metadata"]["team"], str | dict)


def test_sqlite_sink_stores_a_record_with_a_lone_surrogate(tmp_path: Path) -> None:
    sink = SqliteSink(tmp_path / "r.sqlite3")
    try:
        sink.write({"kind": "call", "user": "u\ud800", "cost": float("nan")})
    finally:
        sink.close()
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(tmp_path / "r.sqlite3")) as conn:
        user, record = conn.execute("SELECT user, record FROM receipts").fetchone()
    assert user == "u\\ud800"
    assert json.loads(record, parse_constant=_no_constant)["cost"] == "NaN"


def test_jsonl_sink_writes_a_receipt_with_an_unprintable_value(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "r.jsonl")
    sink.write({"kind": "attempt", "odd": _Unprintable()})
    sink.close()

    assert _lines(tmp_path / "r.jsonl") == [
        {"kind": "attempt", "odd": "<unprintable _Unprintable>"}
    ]


def test_building_a_receipt_never_fails_the_call_and_is_never_dropped(
    make_attempt: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from .helpers import make_policy
    from .test_accounting import _ok

    written: list[dict[str, Any]] = []
    policy: CompiledPolicy = make_policy()
    acct = PolicyAccounting(policy, guard=None, sinks=[_Collect(written)])
    attempt = make_attempt(policy, metadata={"user_id": _Unprintable()})

    cost = acct.settle(attempt, acct.admit(attempt), _ok())

    assert cost > 0
    assert [r["kind"] for r in written] == ["attempt"]
    assert written[0]["user"] == "<unprintable _Unprintable>"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_receipt_that_cannot_be_built_is_written_bare_with_its_cost(
    make_attempt: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from .fakes import FakeGuard
    from .helpers import make_policy
    from .test_accounting import _ok

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise KeyError("layout")

    monkeypatch.setattr("policyroute.accounting_.records.attempt_record", broken)
    written: list[dict[str, Any]] = []
    policy: CompiledPolicy = make_policy()
    guard = FakeGuard()
    acct = PolicyAccounting(policy, guard=guard, sinks=[_Collect(written)])
    attempt = dataclasses.replace(
        make_attempt(policy), retry=1, waited_s=0.25, wait_source="retry_after"
    )

    with caplog.at_level(logging.ERROR, logger="policyroute.accounting"):
        cost = acct.settle(attempt, acct.admit(attempt), _ok())

    assert cost > 0
    assert guard.settled  # the reservation is settled all the same
    (record,) = written
    assert record["kind"] == "attempt"
    assert record["cost"] == format_usd(cost)
    assert record["status"] == "ok"
    # What the executor did before the attempt is known without the full record.
    assert (record["retry"], record["waited_ms"], record["wait_source"]) == (
        1,
        250.0,
        "retry_after",
    )
    assert record["receipt_error"] == "KeyError: 'layout'"
    assert any("building the attempt receipt" in r.getMessage() for r in caplog.records)
