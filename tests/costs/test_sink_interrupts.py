"""Ctrl-C landing while a sync call writes its receipts: the interruption goes on, and the
receipt is kept for the sinks that had not taken it instead of being lost without a word."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute import load_policy
from policyroute.accounting import PolicyAccounting
from policyroute.costs.sinks import CallableSink, JsonlSink
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Reply, Usage

POLICY = """
policyroute: 1
name: interrupted-sinks
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_FAKE_A_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
budgets:
  - {{name: daily, limit_usd: 10, window: day}}
store: {{backend: memory}}
receipts: {{sink: none}}
defaults: {{max_tokens: 10}}
"""


class _InterruptedOnce:
    """A sink function that Ctrl-C interrupts while it writes the first receipt of ``kind``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.interrupted = False
        self.kinds: list[str] = []

    def __call__(self, record: Mapping[str, Any]) -> None:
        if record["kind"] == self.kind and not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        self.kinds.append(str(record["kind"]))


@pytest.fixture
def policy_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PR_FAKE_A_KEY", "sk-fake-a-0123456789")
    with FakeProvider() as provider:
        provider.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
        path = tmp_path / "policy.yaml"
        path.write_text(POLICY.format(base=provider.openai_base))
        yield path


def _kinds(path: Path) -> list[str]:
    return [json.loads(line)["kind"] for line in path.read_text().splitlines()]


def _spent_and_reserved(acct: PolicyAccounting) -> tuple[Decimal, Decimal]:
    (line,) = acct.guard.store.scan("", now=time.time())  # type: ignore[union-attr]
    return line.spent, line.reserved


@pytest.mark.parametrize("kind", ["attempt", "call"])
@pytest.mark.parametrize("how", ["invoke", "stream", "completion"])
def test_ctrl_c_while_a_sink_writes_keeps_the_receipt_for_it_and_the_sinks_after_it(
    policy_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str, how: str
) -> None:
    interrupted = _InterruptedOnce(kind)
    receipts = tmp_path / "r.jsonl"
    policy = load_policy(policy_path)
    acct = PolicyAccounting.from_policy(
        policy, sinks=[CallableSink(interrupted), JsonlSink(receipts)]
    )
    llm = ChatPolicyRoute(policy=policy, accounting=acct)

    def call() -> None:
        if how == "invoke":
            llm.invoke("hello")
        elif how == "stream":
            for _ in llm.stream("hello"):
                pass
        else:
            policyroute.completion(
                policy=policy, accounting=acct, messages=[{"role": "user", "content": "x"}]
            )

    with (
        caplog.at_level(logging.ERROR, logger="policyroute.accounting"),
        pytest.raises(KeyboardInterrupt),
    ):
        call()

    other = "call" if kind == "attempt" else "attempt"
    assert [r["kind"] for r in acct.unwritten] == [kind]
    assert _kinds(receipts) == [other]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2  # the interrupted sink, and the one it kept from the receipt
    assert all("interrupted by KeyboardInterrupt" in m for m in errors)
    assert str(receipts) in errors[1]
    assert _spent_and_reserved(acct) == (Decimal("0.013"), 0)

    assert acct.resend_unwritten() == 1
    assert not acct.unwritten
    assert sorted(_kinds(receipts)) == ["attempt", "call"]
    assert sorted(interrupted.kinds) == ["attempt", "call"]
    acct.close()


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_ctrl_c_while_the_budget_settles_still_writes_the_attempts_receipt_and_cost(
    policy_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    receipts = tmp_path / "r.jsonl"
    policy = load_policy(policy_path)
    acct = PolicyAccounting.from_policy(policy, sinks=[JsonlSink(receipts)])
    store = acct.guard.store  # type: ignore[union-attr]

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "settle", interrupted)
    llm = ChatPolicyRoute(policy=policy, accounting=acct)

    def call() -> None:
        if how == "invoke":
            llm.invoke("hello")
        else:
            for _ in llm.stream("hello"):
                pass

    with pytest.raises(KeyboardInterrupt):
        call()

    attempt, whole = (json.loads(line) for line in receipts.read_text().splitlines())
    assert attempt["kind"] == "attempt"
    assert attempt["budget_error"] == "interrupted by KeyboardInterrupt"
    assert attempt["cost"] == whole["cost"] == "0.013000"
    assert not acct.unwritten
    acct.close()


class _InterruptedInline:
    """A user's sink object written inline from async code (``blocking = False``, no
    ``awrite``) that Ctrl-C interrupts while it writes the attempt's receipt, as on Python 3.10
    or a loop run with ``run_until_complete``, where Ctrl-C raises in the running code."""

    blocking = False

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def write(self, record: Mapping[str, Any]) -> None:
        if record["kind"] == "attempt" and "attempt-interrupted" not in self.kinds:
            self.kinds.append("attempt-interrupted")
            raise KeyboardInterrupt
        self.kinds.append(str(record["kind"]))

    def close(self) -> None:
        pass


@pytest.mark.parametrize("first", ["interrupted", "callable"])
def test_ctrl_c_while_an_async_call_writes_a_receipt_inline_keeps_it_for_every_sink_not_written(
    policy_path: Path, caplog: pytest.LogCaptureFixture, first: str
) -> None:
    inline = _InterruptedInline()
    taken: list[str] = []
    others = [CallableSink(lambda r: taken.append(str(r["kind"])), blocking=True)]
    sinks = [inline, *others] if first == "interrupted" else [*others, inline]
    policy = load_policy(policy_path)
    acct = PolicyAccounting.from_policy(policy, sinks=sinks)
    llm = ChatPolicyRoute(policy=policy, accounting=acct)

    with (
        caplog.at_level(logging.ERROR, logger="policyroute.accounting"),
        pytest.raises(KeyboardInterrupt),
    ):
        asyncio.run(llm.ainvoke("hello"))

    # The inline write comes first, before the sinks that may wait: none of them had it.
    assert [r["kind"] for r in acct.unwritten] == ["attempt"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert all("interrupted by KeyboardInterrupt" in m for m in errors)
    assert _spent_and_reserved(acct) == (Decimal("0.013"), 0)

    assert acct.resend_unwritten() == 1
    assert sorted(taken) == ["attempt", "call"]
    assert sorted(inline.kinds) == ["attempt", "attempt-interrupted", "call"]
    acct.close()


def test_ctrl_c_while_an_async_call_awaits_a_callable_keeps_the_receipt_for_it(
    policy_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    interrupted = _InterruptedOnce("attempt")
    inline = _InterruptedInline()
    inline.kinds.append("attempt-interrupted")  # this one writes every receipt
    policy = load_policy(policy_path)
    acct = PolicyAccounting.from_policy(policy, sinks=[CallableSink(interrupted), inline])
    llm = ChatPolicyRoute(policy=policy, accounting=acct)

    with (
        caplog.at_level(logging.ERROR, logger="policyroute.accounting"),
        pytest.raises(KeyboardInterrupt),
    ):
        asyncio.run(llm.ainvoke("hello"))

    assert [r["kind"] for r in acct.unwritten] == ["attempt"]
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "CallableSink" in error
    assert "interrupted by KeyboardInterrupt" in error
    assert acct.resend_unwritten() == 1
    assert sorted(interrupted.kinds) == ["attempt", "call"]
    assert inline.kinds[1:] == ["attempt", "call"]  # once each
    acct.close()
