"""Timeouts, failover and broken connections over HTTPS, as every real provider serves.

The fake provider serves TLS here (``FakeProvider(tls=True)``), and litellm verifies its
certificate against the test's own certificate authority. Through the entry points a user
calls (``policyroute.completion`` / ``acompletion`` and ``ChatPolicyRoute``'s ``invoke`` /
``ainvoke`` / ``stream`` / ``astream``), on the OpenAI and the Anthropic wire: an answer
arrives; an answer dripped past the request timeout is cut at the timeout plus its grace and
the call falls over to the next deployment; a stream whose first token is late falls over, one
that stalls after its first tokens ends in a typed :class:`StreamInterruptedError`; a reset
connection falls over. After each, the deployment answers again on the same pooled client.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from billing_support import receipts
from langchain_core.messages import HumanMessage
from litellm.caching.llm_caching_handler import LLMClientCache
from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler, HTTPHandler

import policyroute
from policyroute import ChatPolicyRoute
from policyroute._lazy import import_litellm
from policyroute.errors import (
    AllCandidatesFailedError,
    ProviderTimeoutError,
    StreamInterruptedError,
)
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("shared_loop_kept")]

MESSAGES = [{"role": "user", "content": "name a lighthouse"}]
_LITELLM = tuple(int(part) for part in importlib.metadata.version("litellm").split(".")[:2])
TEXT = "one two three four five six seven eight"
UNARY = ["completion", "invoke", "acompletion", "ainvoke"]
STREAMS = ["completion", "stream", "acompletion", "astream"]
WIRES = {
    "openai": ("openai/tls-a", "openai/tls-b"),
    "anthropic": ("anthropic/claude-tls-a", "anthropic/claude-tls-b"),
}

POLICY = """
policyroute: 1
name: tls
models:
  a:
    model: {model_a}
    api_base: {base}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
  b:
    model: {model_b}
    api_base: {base}
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
  timeout: 1s
  first_token_timeout: 1s
  idle_timeout: 1s
  retry: {{attempts: 0}}
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(tls=True) as fp:
        yield fp


@pytest.fixture
def fp(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    """The module's HTTPS provider, and litellm trusting its authority for this test only.

    litellm keeps the clients it builds, each with the verification it was built with: in a
    process-wide cache (Anthropic's sync client under a key that names its timeout alone, so
    one built by an earlier plain HTTP test would be reused), and in two module-level handlers
    (Anthropic's streams). The test gets a cache and handlers of its own, built trusting
    ``ssl_verify``, and closed afterwards (the async ones with their event loop).
    """
    litellm = import_litellm()
    assert provider.tls is not None
    monkeypatch.setattr(litellm, "ssl_verify", provider.tls.ca_file)
    cache = LLMClientCache()
    monkeypatch.setattr(litellm, "in_memory_llm_clients_cache", cache)
    handler = HTTPHandler()
    monkeypatch.setattr(litellm, "module_level_client", handler)
    monkeypatch.setattr(litellm, "module_level_aclient", AsyncHTTPHandler())
    provider.reset()
    yield provider
    provider.reset()
    handler.close()
    for client in list(cache.cache_dict.values()):
        close = getattr(client, "close", None)
        if callable(close) and not inspect.iscoroutinefunction(close):
            close()
    cache.flush_cache()


def _policy(workdir: Path, fp: FakeProvider, wire: str, to: str = "[a, b]") -> Path:
    model_a, model_b = WIRES[wire]
    base = fp.openai_base if wire == "openai" else fp.anthropic_base
    path = workdir / "policy.yaml"
    path.write_text(POLICY.format(model_a=model_a, model_b=model_b, base=base, to=to))
    return path


def _served(wire: str, alias: str) -> str:
    return WIRES[wire][0 if alias == "a" else 1].partition("/")[2]


def _ask(policy: Path, mode: str) -> str:
    """One call that is not streamed, through ``mode``; the answer's text."""
    if mode == "completion":
        response = policyroute.completion(policy=policy, messages=MESSAGES)
        return str(response.choices[0].message.content)
    if mode == "invoke":
        return str(ChatPolicyRoute(policy=policy).invoke(MESSAGES[0]["content"]).content)

    async def call() -> str:
        if mode == "acompletion":
            response = await policyroute.acompletion(policy=policy, messages=MESSAGES)
            return str(response.choices[0].message.content)
        message = await ChatPolicyRoute(policy=policy).ainvoke(MESSAGES[0]["content"])
        return str(message.content)

    return asyncio.run(call())


def _stream(policy: Path, mode: str) -> str:
    """One streamed call through ``mode``, read to its end; the text it streamed."""
    prompt = [HumanMessage(MESSAGES[0]["content"])]
    if mode == "completion":
        chunks = policyroute.completion(policy=policy, messages=MESSAGES, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    if mode == "stream":
        return "".join(str(c.content) for c in ChatPolicyRoute(policy=policy).stream(prompt))

    async def read() -> str:
        parts: list[str] = []
        if mode == "acompletion":
            chunks: Any = await policyroute.acompletion(
                policy=policy, messages=MESSAGES, stream=True
            )
            async for chunk in chunks:
                if chunk.choices:
                    parts.append(chunk.choices[0].delta.content or "")
        else:
            async for message in ChatPolicyRoute(policy=policy).astream(prompt):
                parts.append(str(message.content))
        return "".join(parts)

    return asyncio.run(read())


def _attempts(workdir: Path) -> list[tuple[str, str, str | None]]:
    return [(a["deployment"], a["status"], a["error_class"]) for a in receipts(workdir, "attempt")]


@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", UNARY)
def test_an_answer_arrives_over_tls(fp: FakeProvider, workdir: Path, mode: str, wire: str) -> None:
    policy = _policy(workdir, fp, wire)
    fp.script(_served(wire, "a"), Reply(text=TEXT))

    assert _ask(policy, mode) == TEXT

    assert fp.attempt_counts == {_served(wire, "a"): 1}
    assert _attempts(workdir) == [("a", "ok", None)]


@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", STREAMS)
def test_a_stream_arrives_over_tls(fp: FakeProvider, workdir: Path, mode: str, wire: str) -> None:
    policy = _policy(workdir, fp, wire)
    fp.script(_served(wire, "a"), Reply(text=TEXT))

    assert _stream(policy, mode) == TEXT

    assert fp.attempt_counts == {_served(wire, "a"): 1}


def _drip() -> Fault:
    # A body that keeps coming, a few bytes every 0.2 s: no single read waits the timeout.
    return Fault.raw_stream('{"id": "drip"}', repeat_every=0.2, timeout=30)


@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", UNARY)
def test_an_answer_dripping_past_the_timeout_falls_over_to_the_next_deployment(
    fp: FakeProvider, workdir: Path, mode: str, wire: str
) -> None:
    policy = _policy(workdir, fp, wire)
    fp.script(_served(wire, "a"), _drip())
    fp.script(_served(wire, "b"), Reply(text=TEXT))

    assert _ask(policy, mode) == TEXT

    assert fp.attempt_counts == {_served(wire, "a"): 1, _served(wire, "b"): 1}
    assert _attempts(workdir) == [("a", "error", "timeout"), ("b", "ok", None)]
    # The cut left the pool sound: the first deployment answers on it again.
    fp.script(_served(wire, "a"), Reply(text="again"))
    assert _ask(policy, mode) == "again"


@pytest.mark.parametrize("mode", ["completion", "ainvoke"])
def test_every_deployment_dripping_fails_the_call_with_their_timeouts(
    fp: FakeProvider, workdir: Path, mode: str
) -> None:
    policy = _policy(workdir, fp, "openai")
    fp.script(_served("openai", "a"), _drip())
    fp.script(_served("openai", "b"), _drip())

    with pytest.raises(AllCandidatesFailedError) as info:
        _ask(policy, mode)

    assert [type(e) for e in info.value.errors] == [ProviderTimeoutError] * 2
    assert [e.deployment for e in info.value.errors] == ["a", "b"]
    (call,) = receipts(workdir, "call")
    assert (call["status"], call["attempts"]) == ("error", 2)


@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", STREAMS)
def test_a_stream_whose_first_token_is_late_falls_over(
    fp: FakeProvider, workdir: Path, mode: str, wire: str
) -> None:
    policy = _policy(workdir, fp, wire)
    fp.script(_served(wire, "a"), Fault.slow_first_token(10))
    fp.script(_served(wire, "b"), Reply(text=TEXT))

    assert _stream(policy, mode) == TEXT

    assert fp.attempt_counts == {_served(wire, "a"): 1, _served(wire, "b"): 1}
    assert _attempts(workdir) == [("a", "error", "timeout"), ("b", "ok", None)]


@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", STREAMS)
def test_a_stream_that_stalls_after_its_first_tokens_is_interrupted(
    fp: FakeProvider, workdir: Path, mode: str, wire: str
) -> None:
    policy = _policy(workdir, fp, wire)
    fp.script(_served(wire, "a"), Fault.stall(after=4, reply=Reply(text=TEXT), timeout=30))

    with pytest.raises(StreamInterruptedError) as info:
        _stream(policy, mode)

    assert info.value.partial_text
    assert TEXT.startswith(info.value.partial_text)
    assert info.value.error_class == "timeout"
    assert fp.attempt_counts == {_served(wire, "a"): 1}  # no failover once tokens were out
    assert _attempts(workdir) == [("a", "interrupted", "timeout")]
    fp.script(_served(wire, "a"), Reply(text="again"))
    assert _stream(policy, mode) == "again"


def _unclosed_tls_on_310(test: Callable[..., None]) -> Callable[..., None]:
    """Python 3.10's asyncio leaves aiohttp's TLS transport unclosed after a connection reset
    (bare ``litellm.acompletion`` too); 3.11 rewrote asyncio's SSL layer and closes it."""
    if sys.version_info < (3, 11):
        test = pytest.mark.filterwarnings("ignore:unclosed transport:ResourceWarning")(test)
        test = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")(test)
    return test


@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", UNARY)
@_unclosed_tls_on_310
def test_a_reset_connection_falls_over(
    fp: FakeProvider, workdir: Path, mode: str, wire: str
) -> None:
    policy = _policy(workdir, fp, wire)
    fp.set_default(_served(wire, "a"), Fault.connection_reset())
    fp.script(_served(wire, "b"), Reply(text=TEXT))

    assert _ask(policy, mode) == TEXT

    # litellm's async HTTP handler (Anthropic's) up to 1.106 sends a request again, once, on a
    # new connection when its connection fails (AsyncHTTPHandler.post): one attempt of
    # policyroute's. 1.108 and later don't.
    resent = wire == "anthropic" and mode.startswith("a") and _LITELLM < (1, 108)
    assert fp.attempt_counts == {_served(wire, "a"): 2 if resent else 1, _served(wire, "b"): 1}
    assert _attempts(workdir) == [("a", "error", "connection"), ("b", "ok", None)]
    fp.set_default(_served(wire, "a"), Reply(text="again"))
    assert _ask(policy, mode) == "again"
