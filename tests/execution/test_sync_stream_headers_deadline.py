"""A sync stream whose provider takes the request but never sends its response headers, or
sends them a few bytes at a time, ends at its first-token deadline, as an async stream does.

httpx applies litellm's ``timeout`` to each read, and the headers of a streamed answer are
read before the stream exists, so the stream's own watchdog has nothing to close yet: a
provider that accepted the connection and went silent held ``ChatPolicyRoute.stream`` and
``policyroute.completion(stream=True)`` until it closed its end (or for litellm's 600 s). The
first-token deadline now watches the connection from the moment the request is written, on a
new connection and on one the pool reuses, over plain HTTP and over TLS, on the OpenAI and
the Anthropic wire: the attempt ends as a timeout, not billed (as the async stream's: the
provider never said it accepted the request), and the call retries or falls over per policy.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from billing_support import receipts
from header_drip_support import HeaderDripper
from langchain_core.messages import HumanMessage
from litellm.caching.llm_caching_handler import LLMClientCache
from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler, HTTPHandler

import policyroute
from policyroute import ChatPolicyRoute
from policyroute._lazy import import_litellm
from policyroute.testing import FakeProvider, Fault, LocalTLS, Reply

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("shared_loop_kept")]

MESSAGES = [{"role": "user", "content": "name a lighthouse"}]
TEXT = "one two three four five six"
# How long a silent provider keeps the connection open: far past the first-token deadline.
SILENT_SECONDS = 30.0
WIRES = {
    "openai": ("openai/hdr-a", "openai/hdr-b"),
    "anthropic": ("anthropic/claude-hdr-a", "anthropic/claude-hdr-b"),
}

POLICY = """
policyroute: 1
name: stream-headers
models:
  a:
    model: {model_a}
    api_base: {base_a}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
  b:
    model: {model_b}
    api_base: {base_b}
    api_key: ${{BILLING_TEST_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
store: {{backend: memory, lease: 300s}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
routes:
  - name: default
    to: {to}
defaults:
  max_tokens: 64
  first_token_timeout: 1s
  retry: {{attempts: {retries}, backoff: {{initial: 0.01s, max: 0.01s, jitter: false}}}}
"""


@pytest.fixture(scope="module")
def authority() -> LocalTLS:
    return LocalTLS()


@pytest.fixture(scope="module", params=["plain", "tls"])
def provider(request: pytest.FixtureRequest, authority: LocalTLS) -> Iterator[FakeProvider]:
    with FakeProvider(tls=authority if request.param == "tls" else False) as fp:
        yield fp


@pytest.fixture
def fp(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    """The module's provider, and litellm's clients (its cache, its module-level handlers)
    of this test's own, trusting the test's authority over TLS, closed afterwards."""
    litellm = import_litellm()
    if provider.tls is not None:
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


def _base(fp: FakeProvider, wire: str) -> str:
    return fp.openai_base if wire == "openai" else fp.anthropic_base


def _policy(
    workdir: Path, wire: str, base_a: str, base_b: str, to: str = "[a, b]", retries: int = 0
) -> Path:
    model_a, model_b = WIRES[wire]
    path = workdir / "policy.yaml"
    path.write_text(
        POLICY.format(
            model_a=model_a, model_b=model_b, base_a=base_a, base_b=base_b, to=to, retries=retries
        )
    )
    return path


def _served(wire: str, alias: str) -> str:
    return WIRES[wire][0 if alias == "a" else 1].partition("/")[2]


def _stream(policy: Path, mode: str) -> tuple[str, list[tuple[str, str, str | None]] | None]:
    """One streamed call through ``mode``, read to its end: the text it streamed, and the
    attempts its last message's metadata lists (``None`` where there is no such message)."""
    prompt = [HumanMessage(MESSAGES[0]["content"])]
    if mode == "completion":
        chunks = policyroute.completion(policy=policy, messages=MESSAGES, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), None
    messages: list[Any] = []
    if mode == "stream":
        messages = list(ChatPolicyRoute(policy=policy).stream(prompt))
    else:

        async def read() -> list[Any]:
            return [m async for m in ChatPolicyRoute(policy=policy).astream(prompt)]

        messages = asyncio.run(read())
    meta = [
        m.response_metadata["policyroute"] for m in messages if "policyroute" in m.response_metadata
    ]
    attempts = [(a["deployment"], a["status"], a["error_class"]) for a in meta[-1]["attempts"]]
    return "".join(str(m.content) for m in messages), attempts


def _attempts(workdir: Path) -> list[dict[str, Any]]:
    return receipts(workdir, "attempt")


def _classes(attempts: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(a["deployment"], a["status"], a["error_class"]) for a in attempts]


@pytest.mark.parametrize("pooled", [False, True], ids=["new-connection", "pooled-connection"])
@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", ["stream", "completion", "astream"])
def test_a_stream_whose_provider_never_answers_falls_over_at_the_first_token_deadline(
    fp: FakeProvider, workdir: Path, mode: str, wire: str, pooled: bool
) -> None:
    policy = _policy(workdir, wire, _base(fp, wire), _base(fp, wire))
    a, b = _served(wire, "a"), _served(wire, "b")
    if pooled:  # the pool keeps the connection of a stream read to its end
        fp.script(a, Reply(text="first"))
        assert _stream(policy, mode)[0] == "first"
    fp.script(a, Fault.no_response(timeout=SILENT_SECONDS))
    fp.script(b, Reply(text=TEXT))

    text, listed = _stream(policy, mode)

    assert text == TEXT
    assert fp.attempt_counts == {a: 2 if pooled else 1, b: 1}
    attempts = _attempts(workdir)[1 if pooled else 0 :]
    expected = [("a", "error", "timeout"), ("b", "ok", None)]
    assert _classes(attempts) == expected
    assert listed in (None, expected)
    assert "no first token within 1s" in attempts[0]["error"]
    # The provider never said it accepted the request: not billed, as the async stream's.
    assert attempts[0]["provider_billed"] is False
    # The deployment answers again afterwards, on the same clients.
    fp.script(a, Reply(text="again"))
    assert _stream(policy, mode)[0] == "again"


@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", ["stream", "completion"])
def test_a_silent_provider_is_retried_per_policy(
    fp: FakeProvider, workdir: Path, mode: str, wire: str
) -> None:
    policy = _policy(workdir, wire, _base(fp, wire), _base(fp, wire), to="a", retries=1)
    a = _served(wire, "a")
    fp.script(a, Fault.no_response(timeout=SILENT_SECONDS), Reply(text=TEXT))

    assert _stream(policy, mode)[0] == TEXT

    assert fp.attempt_counts == {a: 2}
    assert _classes(_attempts(workdir)) == [("a", "error", "timeout"), ("a", "ok", None)]


@pytest.mark.parametrize("mode", ["stream", "completion"])
def test_streams_answered_in_time_are_not_cut(fp: FakeProvider, workdir: Path, mode: str) -> None:
    policy = _policy(workdir, "openai", fp.openai_base, fp.openai_base, to="a")
    fp.set_default(_served("openai", "a"), Reply(text=TEXT))

    for _ in range(3):
        assert _stream(policy, mode)[0] == TEXT
    # Past the deadlines of those streams, whose connection is pooled now.
    time.sleep(1.5)
    assert _stream(policy, mode)[0] == TEXT

    assert _classes(_attempts(workdir)) == [("a", "ok", None)] * 4
    assert fp.attempt_counts == {_served("openai", "a"): 4}


@pytest.fixture(params=["plain", "tls"])
def dripper(
    request: pytest.FixtureRequest, authority: LocalTLS, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[HeaderDripper, FakeProvider]]:
    """A server whose headers drip, and a fake provider to fall over to, both over plain HTTP
    or both over TLS from the test's authority; litellm's clients of the test's own."""
    tls = authority if request.param == "tls" else None
    litellm = import_litellm()
    if tls is not None:
        monkeypatch.setattr(litellm, "ssl_verify", tls.ca_file)
    cache = LLMClientCache()
    monkeypatch.setattr(litellm, "in_memory_llm_clients_cache", cache)
    handler = HTTPHandler()
    monkeypatch.setattr(litellm, "module_level_client", handler)
    monkeypatch.setattr(litellm, "module_level_aclient", AsyncHTTPHandler())
    server = HeaderDripper(tls)
    with FakeProvider(tls=tls or False) as fp:
        yield server, fp
    handler.close()
    for client in list(cache.cache_dict.values()):
        close = getattr(client, "close", None)
        if callable(close) and not inspect.iscoroutinefunction(close):
            close()
    cache.flush_cache()
    server.close()


@pytest.mark.parametrize("wire", sorted(WIRES))
@pytest.mark.parametrize("mode", ["stream", "completion"])
def test_a_stream_whose_headers_drip_falls_over_at_the_first_token_deadline(
    dripper: tuple[HeaderDripper, FakeProvider], workdir: Path, mode: str, wire: str
) -> None:
    server, fp = dripper
    root = f"{server.scheme}://127.0.0.1:{server.port}"
    policy = _policy(workdir, wire, server.base if wire == "openai" else root, _base(fp, wire))
    server.drip.add(_served(wire, "a"))
    fp.script(_served(wire, "b"), Reply(text=TEXT))

    assert _stream(policy, mode)[0] == TEXT

    assert server.requests == [_served(wire, "a")]
    assert fp.attempt_counts == {_served(wire, "b"): 1}
    assert _classes(_attempts(workdir)) == [("a", "error", "timeout"), ("b", "ok", None)]
    assert server.gave_up.wait(5)  # the connection was dropped, not left dripping
