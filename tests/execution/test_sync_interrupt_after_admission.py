"""A Ctrl-C that ends a sync call between its attempt's admission and the request being sent
leaves nothing behind: the deployment's count in flight (which ``least_busy`` reads) is back to
zero, and the budget holds no reservation, in the memory store as in SQLite.

The interrupt comes as the attempt is set up right after its admission: raised there (as a
``KeyboardInterrupt`` from that step), or delivered there as a real SIGINT
(``_thread.interrupt_main``). Before, both came between the admission and the ``try`` that
gives back what it took: the count stayed up for the process's life, and the reservation was
held until its lease ran out, then charged its worst case.
"""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from policyroute.accounting import PolicyAccounting
from policyroute.execution import executor as executor_module
from policyroute.execution import stream_sync as stream_sync_module
from policyroute.execution.attempt import AttemptRun
from policyroute.execution.executor import Executor
from policyroute.execution.hooks import AttemptInfo
from policyroute.execution.result import StreamDelta
from policyroute.execution.stream_run import StreamRun
from policyroute.policy.loader import load_policy
from policyroute.request import Request
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hi"}]

POLICY = """
policyroute: 1
name: interrupted-after-admission
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{INTERRUPTED_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
  b:
    model: openai/b
    api_base: {base}
    api_key: ${{INTERRUPTED_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
groups:
  pool: {{strategy: least_busy, models: [a, b]}}
budgets:
  - name: daily
    limit_usd: 100
    window: day
store: {store}
receipts: {{sink: none}}
routes: [{{name: default, to: pool}}]
defaults: {{max_tokens: 64, retry: {{attempts: 0}}}}
"""

STORES = {
    "memory": "{backend: memory}",
    "sqlite": "{backend: sqlite, path: budgets.sqlite3}",
}


@pytest.fixture(params=list(STORES))
def accounting(
    request: Any, fp: FakeProvider, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PolicyAccounting]:
    monkeypatch.setenv("INTERRUPTED_KEY", "sk-test")
    path = workdir / "policy.yaml"
    path.write_text(POLICY.format(base=fp.openai_base, store=STORES[request.param]), "utf-8")
    acct = PolicyAccounting.from_policy(load_policy(path))
    yield acct
    acct.close()


def _reserved(acct: PolicyAccounting) -> Decimal:
    assert acct.guard is not None
    lines = acct.guard.store.scan("", now=time.time())
    assert lines, "the attempt's admission made no reservation"
    return sum((line.reserved for line in lines), Decimal(0))


def _assert_nothing_held(executor: Executor, acct: PolicyAccounting) -> None:
    assert executor.stats.in_flight("a") == executor.stats.in_flight("b") == 0
    assert _reserved(acct) == 0


class _RaisingRun(AttemptRun):
    """The attempt's setup right after its admission, ended by a ``KeyboardInterrupt``."""

    def __init__(self, attempt: AttemptInfo) -> None:
        raise KeyboardInterrupt


class _SignalledRun(AttemptRun):
    """The attempt's setup right after its admission, with a real Ctrl-C delivered as it
    begins (once)."""

    armed = True

    def __init__(self, attempt: AttemptInfo) -> None:
        if _SignalledRun.armed:
            _SignalledRun.armed = False
            _thread.interrupt_main()
        super().__init__(attempt)


_MAIN_THREAD_ONLY = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="Python delivers SIGINT to the main thread only",
)


@pytest.mark.parametrize(
    "run_class",
    [
        pytest.param(_RaisingRun, id="raised"),
        pytest.param(_SignalledRun, id="sigint", marks=_MAIN_THREAD_ONLY),
    ],
)
def test_a_ctrl_c_right_after_admission_gives_everything_back(
    fp: FakeProvider,
    accounting: PolicyAccounting,
    monkeypatch: pytest.MonkeyPatch,
    run_class: type[AttemptRun],
) -> None:
    fp.set_default("*", Reply(text="fine"))
    executor = Executor(accounting.policy, accounting=accounting)
    monkeypatch.setattr(_SignalledRun, "armed", True)
    monkeypatch.setattr(executor_module, "AttemptRun", run_class)

    with pytest.raises(KeyboardInterrupt):
        executor.complete(Request(messages=MESSAGES))

    assert not fp.requests_for("a")
    assert not fp.requests_for("b")
    _assert_nothing_held(executor, accounting)
    monkeypatch.setattr(executor_module, "AttemptRun", AttemptRun)
    assert executor.complete(Request(messages=MESSAGES)).response is not None
    _assert_nothing_held(executor, accounting)


class _RaisingStreamRun(StreamRun):
    """A stream attempt's setup right after its admission, ended by a ``KeyboardInterrupt``."""

    def __init__(self, attempt: AttemptInfo, messages: Any) -> None:
        raise KeyboardInterrupt


class _SignalledStreamRun(StreamRun):
    """A stream attempt's setup right after its admission, with a real Ctrl-C delivered as
    it begins (once)."""

    armed = True

    def __init__(self, attempt: AttemptInfo, messages: Any) -> None:
        if _SignalledStreamRun.armed:
            _SignalledStreamRun.armed = False
            _thread.interrupt_main()
        super().__init__(attempt, messages)


def _streamed_text(executor: Executor) -> str:
    return "".join(
        str(event.chunk["choices"][0]["delta"].get("content") or "")
        for event in executor.stream(Request(messages=MESSAGES))
        if isinstance(event, StreamDelta) and event.chunk.get("choices")
    )


@pytest.mark.parametrize(
    "run_class",
    [
        pytest.param(_RaisingStreamRun, id="raised"),
        pytest.param(_SignalledStreamRun, id="sigint", marks=_MAIN_THREAD_ONLY),
    ],
)
def test_a_ctrl_c_as_a_sync_stream_attempt_is_set_up_gives_everything_back(
    fp: FakeProvider,
    accounting: PolicyAccounting,
    monkeypatch: pytest.MonkeyPatch,
    run_class: type[StreamRun],
) -> None:
    fp.set_default("*", Reply(text="fine"))
    executor = Executor(accounting.policy, accounting=accounting)
    monkeypatch.setattr(_SignalledStreamRun, "armed", True)
    monkeypatch.setattr(stream_sync_module, "StreamRun", run_class)

    with pytest.raises(KeyboardInterrupt):
        _streamed_text(executor)

    assert not fp.requests_for("a")
    assert not fp.requests_for("b")
    _assert_nothing_held(executor, accounting)
    monkeypatch.setattr(stream_sync_module, "StreamRun", StreamRun)
    assert _streamed_text(executor) == "fine"
    _assert_nothing_held(executor, accounting)
