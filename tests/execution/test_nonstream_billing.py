"""A non-streamed attempt that times out or is cancelled after its request reached the
provider is charged its prompt (counted as the budget estimate counts it, marked estimated);
one that never got its request out is free.

Through ``policyroute.completion`` / ``acompletion`` and ``ChatPolicyRoute.invoke`` /
``ainvoke`` with a policy file (a day budget, receipts to a JSONL file), against the fake
provider on loopback: a provider holding its answer past the request timeout, a closed port, a
listener whose accept queue is full (the connection never completes), a cancellation while
the answer is awaited or while connecting, during a retry's backoff, and a fallback after a
timeout.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from billing_support import INPUT_RATE, OUTPUT_RATE, assert_charged, receipts
from exec_support import arun, stalled_port
from langchain_core.messages import HumanMessage

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.costs.estimate import count_input_tokens
from policyroute.errors import PolicyRouteError
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "write a haiku about a sleepy lighthouse keeper"}]
MODES = ["completion", "acompletion", "invoke", "ainvoke"]

POLICY = """
policyroute: 1
name: nonstream-billing
models:
  a:
    model: openai/ns-a
    api_base: {base_a}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
  b:
    model: openai/ns-b
    api_base: {base_b}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
budgets:
  - name: daily
    limit_usd: 100
    window: day
store: {{backend: memory, lease: 300s}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
routes:
  - name: default
    to: {to}
defaults:
  max_tokens: 64
  timeout: {timeout}
  retry: {retry}
"""


def _policy(
    workdir: Path,
    base_a: str,
    *,
    base_b: str | None = None,
    to: str = "a",
    timeout: str = "0.2s",
    retry: str = "{attempts: 0}",
) -> Path:
    text = POLICY.format(
        base_a=base_a, base_b=base_b or base_a, to=to, timeout=timeout, retry=retry
    )
    path = workdir / "policy.yaml"
    path.write_text(text)
    return path


def _prompt_tokens(model: str = "openai/ns-a") -> int:
    return count_input_tokens(model, MESSAGES, None)


async def _acall(policy: Path, mode: str) -> Any:
    if mode == "ainvoke":
        return await ChatPolicyRoute(policy=policy).ainvoke([HumanMessage(MESSAGES[0]["content"])])
    return await policyroute.acompletion(policy=policy, messages=MESSAGES)


def _call(policy: Path, mode: str) -> Any:
    if mode == "completion":
        return policyroute.completion(policy=policy, messages=MESSAGES)
    if mode == "invoke":
        return ChatPolicyRoute(policy=policy).invoke([HumanMessage(MESSAGES[0]["content"])])
    return arun(_acall(policy, mode))


def _failed_call(policy: Path, mode: str) -> PolicyRouteError:
    with pytest.raises(PolicyRouteError) as info:
        _call(policy, mode)
    return info.value


def _assert_prompt_charged(workdir: Path, status: str) -> dict[str, Any]:
    """One attempt, charged the prompt as the budget estimates it and nothing more, marked
    estimated on its receipt and its call's, with nothing left reserved."""
    (attempt,) = receipts(workdir, "attempt")
    assert attempt["status"] == status
    assert_charged(attempt, _prompt_tokens(), 0)
    assert Decimal(attempt["cost"]) > 0
    assert attempt["usage_estimated"] is True
    (call,) = receipts(workdir, "call")
    assert (call["cost"], call["usage_estimated"]) == (attempt["cost"], True)
    return attempt


def _assert_free(workdir: Path) -> dict[str, Any]:
    (attempt,) = receipts(workdir, "attempt")
    assert (attempt["provider_billed"], Decimal(attempt["cost"])) == (False, Decimal(0))
    assert attempt["input_tokens"] == 0
    (budget,) = attempt["budgets"]
    assert (Decimal(budget["spent"]), Decimal(budget["reserved"])) == (Decimal(0), Decimal(0))
    return attempt


@pytest.fixture
def closed_port_base() -> str:
    """An API base on a loopback port nobody listens on: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def unreachable_base() -> Iterator[str]:
    """An API base on a port where connecting times out."""
    with stalled_port() as port:
        yield f"http://127.0.0.1:{port}/v1"


# ---------------------------------------------------------------------- (1) request timeout


@pytest.mark.parametrize("mode", MODES)
def test_a_request_timeout_while_the_provider_holds_the_answer_is_charged_its_prompt(
    fp: FakeProvider, workdir: Path, mode: str
) -> None:
    fp.script("ns-a", Fault.no_response(timeout=5))
    policy = _policy(workdir, fp.openai_base)

    error = _failed_call(policy, mode)

    assert getattr(error, "error_class", None) == "timeout"
    attempt = _assert_prompt_charged(workdir, "error")
    assert attempt["error_class"] == "timeout"


def test_a_slow_answer_past_the_timeout_is_charged_its_prompt(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script("ns-a", Fault.slow_first_token(2.0, Reply(text="too late")))
    policy = _policy(workdir, fp.openai_base)

    _failed_call(policy, "acompletion")

    _assert_prompt_charged(workdir, "error")


def test_policyroutes_own_deadline_cutting_a_trickling_answer_is_charged_its_prompt(
    fp: FakeProvider, workdir: Path
) -> None:
    # Bytes keep coming, so litellm's read timeout never fires: policyroute's own deadline
    # (the request timeout plus a grace) cancels the call while it reads the answer.
    trickle = Fault.raw_stream('{"partial": true}', repeat_every=0.1, timeout=5)
    fp.script("ns-a", Reply(text="warm"), trickle)
    policy = _policy(workdir, fp.openai_base)
    # A first call spends a while in litellm's imports, past the deadline of this one.
    _call(policy, "acompletion")

    error = _failed_call(policy, "acompletion")

    assert getattr(error, "error_class", None) == "timeout"
    warm, attempt = receipts(workdir, "attempt")
    assert (attempt["status"], attempt["provider_billed"]) == ("error", True)
    assert (attempt["input_tokens"], attempt["output_tokens"]) == (_prompt_tokens(), 0)
    assert attempt["usage_estimated"] is True
    prompt_cost = (_prompt_tokens() * INPUT_RATE).quantize(Decimal("1e-6"))
    assert Decimal(attempt["cost"]) == prompt_cost
    (budget,) = attempt["budgets"]
    assert (Decimal(budget["spent"]), Decimal(budget["reserved"])) == (
        Decimal(warm["cost"]) + prompt_cost,
        Decimal(0),
    )


# ------------------------------------------------------------- (2) never sent: still free


@pytest.mark.parametrize("mode", MODES)
def test_a_refused_connection_is_free(closed_port_base: str, workdir: Path, mode: str) -> None:
    policy = _policy(workdir, closed_port_base)

    error = _failed_call(policy, mode)

    assert getattr(error, "error_class", None) == "connection"
    _assert_free(workdir)


@pytest.mark.parametrize("mode", ["completion", "acompletion"])
def test_a_connect_timeout_is_free(unreachable_base: str, workdir: Path, mode: str) -> None:
    policy = _policy(workdir, unreachable_base)

    error = _failed_call(policy, mode)

    assert getattr(error, "error_class", None) == "timeout"
    attempt = _assert_free(workdir)
    assert attempt["error_class"] == "timeout"


def test_a_refusal_status_is_free(fp: FakeProvider, workdir: Path) -> None:
    fp.script("ns-a", Fault.status(408))
    policy = _policy(workdir, fp.openai_base)

    _failed_call(policy, "acompletion")

    _assert_free(workdir)


# ------------------------------------------------------------------ (3) cancelled callers


@pytest.mark.parametrize("mode", ["acompletion", "ainvoke"])
def test_a_call_cancelled_while_awaiting_the_answer_is_charged_its_prompt(
    fp: FakeProvider, workdir: Path, mode: str
) -> None:
    fp.script("ns-a", Fault.no_response(timeout=5))
    policy = _policy(workdir, fp.openai_base, timeout="10s")

    async def main() -> None:
        task = asyncio.ensure_future(_acall(policy, mode))
        while not fp.requests_for("ns-a"):  # a first call spends a while importing
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(main())
    _assert_prompt_charged(workdir, "cancelled")
    (call,) = receipts(workdir, "call")
    assert call["status"] == "cancelled"


def test_a_call_cancelled_while_connecting_is_free(unreachable_base: str, workdir: Path) -> None:
    policy = _policy(workdir, unreachable_base, timeout="10s")

    async def main() -> None:
        task = asyncio.ensure_future(_acall(policy, "acompletion"))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(main())
    (attempt,) = receipts(workdir, "attempt")
    assert attempt["status"] == "cancelled"
    _assert_free(workdir)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_a_sync_call_interrupted_while_awaiting_the_answer_is_charged_its_prompt(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script("ns-a", Fault.no_response(timeout=5))
    policy = _policy(workdir, fp.openai_base, timeout="10s")
    main_thread = threading.main_thread().ident
    assert main_thread is not None

    def interrupt() -> None:
        while not fp.requests_for("ns-a"):
            time.sleep(0.02)
        time.sleep(0.1)
        signal.pthread_kill(main_thread, signal.SIGINT)  # as Ctrl-C does, mid-read

    interrupter = threading.Thread(target=interrupt)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            policyroute.completion(policy=policy, messages=MESSAGES)
    finally:
        interrupter.join()

    _assert_prompt_charged(workdir, "cancelled")


# ----------------------------------------------------------- (4) cancelled during a backoff


def test_a_call_cancelled_in_its_retry_backoff_charges_only_the_attempt_made(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script("ns-a", Fault.no_response(timeout=5), Reply(text="later", usage=Usage(20, 4)))
    retry = "{attempts: 1, backoff: {initial: 5s, jitter: false}}"
    policy = _policy(workdir, fp.openai_base, retry=retry)

    async def main() -> None:
        task = asyncio.ensure_future(_acall(policy, "acompletion"))
        while not fp.requests_for("ns-a"):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.6)  # the 0.2 s timeout passed: waiting out the backoff
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    arun(main())
    assert len(fp.requests_for("ns-a")) == 1
    attempt = _assert_prompt_charged(workdir, "error")
    (call,) = receipts(workdir, "call")
    assert call["status"] == "cancelled"

    # The next call finds the budget charged that one attempt, and nothing left reserved.
    arun(_acall(policy, "acompletion"))
    _, after = receipts(workdir, "attempt")
    answer_cost = (20 * INPUT_RATE + 4 * OUTPUT_RATE).quantize(Decimal("1e-6"))
    assert Decimal(after["cost"]) == answer_cost
    (budget,) = after["budgets"]
    assert (Decimal(budget["spent"]), Decimal(budget["reserved"])) == (
        Decimal(attempt["cost"]) + answer_cost,
        Decimal(0),
    )


# ------------------------------------------------------------- (5) fallback after a timeout


@pytest.mark.parametrize("mode", MODES)
def test_a_fallback_after_a_timeout_charges_both_attempts(
    fp: FakeProvider, workdir: Path, mode: str
) -> None:
    fp.script("ns-a", Fault.no_response(timeout=5))
    fp.script("ns-b", Reply(text="a quiet beam", usage=Usage(20, 4)))
    policy = _policy(workdir, fp.openai_base, to="[a, b]")

    _call(policy, mode)

    first, second = receipts(workdir, "attempt")
    assert (first["deployment"], first["status"]) == ("a", "error")
    assert first["usage_estimated"] is True
    prompt_cost = _prompt_tokens() * INPUT_RATE
    assert Decimal(first["cost"]) == prompt_cost.quantize(Decimal("1e-6"))
    assert (second["deployment"], second["status"]) == ("b", "ok")
    assert second["usage_estimated"] is False
    assert (second["input_tokens"], second["output_tokens"]) == (20, 4)
    answer_cost = 20 * INPUT_RATE + 4 * OUTPUT_RATE
    assert Decimal(second["cost"]) == answer_cost.quantize(Decimal("1e-6"))
    (call,) = receipts(workdir, "call")
    assert Decimal(call["cost"]) == Decimal(first["cost"]) + Decimal(second["cost"])
    (budget,) = second["budgets"]
    assert (Decimal(budget["spent"]), Decimal(budget["reserved"])) == (
        Decimal(call["cost"]),
        Decimal(0),
    )
