"""With litellm's own response cache on (``litellm.cache``), a call litellm answers from the
cache reaches no provider and costs nothing: its budget reservation is given back whole, its
receipts say ``cache_hit: true`` with cost 0 and no tokens, and neither ``fastest``'s figures
nor the circuit breaker count it. Sync and async, streamed or not, through
``policyroute.completion`` and ``ChatPolicyRoute``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from langchain_core.caches import InMemoryCache

import policyroute
from policyroute import ChatPolicyRoute
from policyroute._lazy import import_litellm
from policyroute.api import clear_cache
from policyroute.cli import main
from policyroute.testing import FakeProvider, Fault, Reply, Usage

litellm = import_litellm()
pytestmark = [
    pytest.mark.timeout(60),
    # litellm's cache-hit path imports its proxy's modules, whose pydantic models warn once
    # when first built; litellm's to fix, and nothing our code does.
    pytest.mark.filterwarnings("ignore:Items .* `ReadOnly` qualifier:UserWarning"),
]

POLICY = """
policyroute: 1
name: response-cache
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_CACHE_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
routes:
  - name: default
    to: a
budgets:
  - name: daily
    limit_usd: 1.00
    window: day
store: {{backend: sqlite, path: state/budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts/calls.jsonl}}
defaults:
  max_tokens: 10
  retry: {{attempts: 0}}
  circuit_breaker: {{failures: 2, cooldown: 60s}}
"""

# 7 input tokens at $0.001 + 3 output tokens at $0.002
PAID = "0.013000"


def _messages(text: str = "hello there") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    """A fake provider answering "hi" (7 + 3 tokens), litellm's in-memory response cache on
    for the test (and off again after it), run from ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_CACHE_KEY", "sk-test")
    # litellm.Cache registers itself among litellm's callbacks: the lists are put back after.
    for name in ("input_callback", "success_callback", "_async_success_callback"):
        monkeypatch.setattr(litellm, name, list(getattr(litellm, name)))
    monkeypatch.setattr(litellm, "cache", litellm.Cache(type="local"))
    with FakeProvider() as provider:
        provider.set_default("fake-a", Reply(text="hi", usage=Usage(prompt=7, completion=3)))
        (tmp_path / "policy.yaml").write_text(POLICY.format(base=provider.openai_base))
        yield provider
    clear_cache()
    from policyroute.accounting import _clear_default_cache

    _clear_default_cache()


def _receipts() -> list[dict[str, Any]]:
    lines = Path("receipts/calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _assert_hit_receipts(receipts: list[dict[str, Any]]) -> None:
    """The paid call's two receipts, then the hit's: cost 0, no tokens, reservation back."""
    assert [(r["kind"], r["status"], r["cache_hit"]) for r in receipts] == [
        ("attempt", "ok", False),
        ("call", "ok", False),
        ("attempt", "ok", True),
        ("call", "ok", True),
    ]
    paid, _, hit, hit_call = receipts
    assert paid["cost"] == PAID
    assert hit["cost"] == hit_call["cost"] == "0.000000"
    assert hit["provider_billed"] is False
    tokens = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    assert [hit[t] for t in tokens] == [hit_call[t] for t in tokens] == [0, 0, 0, 0]
    # The hit's reservation was given back and nothing charged: the budget holds the paid call.
    (budget,) = hit["budgets"]
    assert (budget["spent"], budget["reserved"]) == (PAID, "0.000000")


def _complete(mode: str, **kwargs: Any) -> Any:
    if mode == "sync":
        return policyroute.completion(policy="policy.yaml", messages=_messages(), **kwargs)
    return asyncio.run(
        policyroute.acompletion(policy="policy.yaml", messages=_messages(), **kwargs)
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cache_hit_is_charged_nothing(fp: FakeProvider, mode: str) -> None:
    first = _complete(mode)
    second = _complete(mode)

    assert len(fp.requests) == 1  # the second call never reached the provider
    assert second.choices[0].message.content == "hi"
    assert second._hidden_params["cache_hit"] is True
    summary = second._hidden_params["policyroute"]
    assert Decimal(summary["cost"]) == 0
    assert summary["cache_hit"] is True
    assert [a.get("cache_hit") for a in summary["attempts"]] == [True]
    assert second._hidden_params["response_cost"] == 0
    assert "cache_hit" not in first._hidden_params["policyroute"]
    _assert_hit_receipts(_receipts())


def _stream(mode: str) -> Any:
    if mode == "sync":
        stream = policyroute.completion(policy="policy.yaml", messages=_messages(), stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        return stream, text

    async def read() -> Any:
        stream = await policyroute.acompletion(
            policy="policy.yaml", messages=_messages(), stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return stream, text

    return asyncio.run(read())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_streamed_cache_hit_is_charged_nothing(fp: FakeProvider, mode: str) -> None:
    _stream(mode)
    stream, text = _stream(mode)

    assert len(fp.requests) == 1  # litellm replayed the stored answer as a stream
    assert text == "hi"
    summary = stream._hidden_params["policyroute"]
    assert Decimal(summary["cost"]) == 0
    assert summary["cache_hit"] is True
    _assert_hit_receipts(_receipts())


def test_a_chat_model_cache_hit_is_charged_nothing(fp: FakeProvider) -> None:
    llm = ChatPolicyRoute(policy="policy.yaml")
    llm.invoke("hello there")
    hit = asyncio.run(llm.ainvoke("hello there"))

    assert len(fp.requests) == 1
    entry = hit.response_metadata["policyroute"]
    assert Decimal(entry["cost"]) == 0
    assert entry["cache_hit"] is True
    _assert_hit_receipts(_receipts())

    streamed = list(llm.stream("hello there"))
    assert len(fp.requests) == 2  # the first stream of the question: stored as it is a miss
    again = list(llm.stream("hello there"))
    assert len(fp.requests) == 2
    assert "".join(str(c.content) for c in again) == "".join(str(c.content) for c in streamed)
    assert [r["cache_hit"] for r in _receipts()[-2:]] == [True, True]
    assert [r["cost"] for r in _receipts()[-2:]] == ["0.000000", "0.000000"]


def test_a_call_that_turns_the_cache_off_is_paid(fp: FakeProvider) -> None:
    _complete("sync")
    for off in ({"caching": False}, {"cache": {"no-cache": True}}):
        response = _complete("sync", **off)
        assert "cache_hit" not in response._hidden_params["policyroute"]
    assert len(fp.requests) == 3
    assert [r["cost"] for r in _receipts() if r["kind"] == "call"] == [PAID] * 3


def test_the_report_counts_a_cache_hit_at_no_cost(
    fp: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    _complete("sync")
    _complete("sync")
    capsys.readouterr()
    assert main(["receipts", "report", "receipts/calls.jsonl", "--format", "json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert (total["calls"], total["attempts"], total["errors"]) == (2, 2, 0)
    assert Decimal(total["cost"]) == Decimal(PAID)
    assert (total["input_tokens"], total["output_tokens"]) == (7, 3)  # the paid call's


def test_a_cache_hit_is_not_fed_to_fastest(fp: FakeProvider) -> None:
    llm = ChatPolicyRoute(policy="policy.yaml")
    stats = llm.executor.stats
    # Each kind of call once paid, once a hit: whatever litellm imports on first use is in.
    for _ in range(2):
        llm.invoke("how are you")
        list(llm.stream("how are you"))
    assert len(fp.requests) == 2
    stats.record_latency("a", 100.0, output_tokens=3)
    stats.record_latency("a", 100.0, first_token=50.0)
    figures = stats.latency("a"), stats.time_to_first_token("a")

    llm.invoke("how are you")
    list(llm.stream("how are you"))
    asyncio.run(llm.ainvoke("how are you"))

    assert len(fp.requests) == 2
    assert (stats.latency("a"), stats.time_to_first_token("a")) == figures
    assert stats.in_flight("a") == 0


def test_a_cache_hit_is_no_success_nor_failure_for_the_breaker(fp: FakeProvider) -> None:
    llm = ChatPolicyRoute(policy="policy.yaml")
    breakers = llm.executor.breakers
    llm.invoke("how are you")
    llm.invoke("how are you")  # a first hit: whatever litellm imports for hits is in
    # Two failures in a row open the breaker: a hit between them is no success of the
    # deployment's, and the second failure still opens it.
    fp.script("fake-a", Fault.status(500), Fault.status(500))
    with pytest.raises(policyroute.ProviderError):
        llm.invoke("fails once")
    llm.invoke("how are you")
    with pytest.raises(policyroute.ProviderError):
        llm.invoke("fails twice")
    assert breakers.state("a") == "open"

    # Tried anyway as the breaker's probe (every candidate is open), a hit leaves it open.
    llm.invoke("how are you")
    assert breakers.state("a") == "open"


def test_a_redis_cache_hit_is_charged_nothing(
    fp: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from budgets.redis_servers import server

    async def twice(port: int) -> Any:
        try:
            await policyroute.acompletion(policy="policy.yaml", messages=_messages())
            # litellm stores the answer in a task of its own once the call has returned.
            with redis.Redis(port=port) as stored:
                for _ in range(500):
                    if stored.dbsize():
                        break
                    await asyncio.sleep(0.01)
            return await policyroute.acompletion(policy="policy.yaml", messages=_messages())
        finally:
            await litellm.cache.cache.disconnect()  # its clients belong to this event loop

    with server(tmp_path / "redis") as port:
        cache = litellm.Cache(type="redis", host="127.0.0.1", port=str(port))
        monkeypatch.setattr(litellm, "cache", cache)
        second = asyncio.run(twice(port))

    assert len(fp.requests) == 1
    assert second._hidden_params["policyroute"]["cache_hit"] is True
    _assert_hit_receipts(_receipts())


def test_a_litellm_cache_hit_kept_in_langchains_cache_is_the_original_call(
    fp: FakeProvider,
) -> None:
    ChatPolicyRoute(policy="policy.yaml").invoke("hello there")  # paid; in litellm's cache
    llm = ChatPolicyRoute(policy="policy.yaml", cache=InMemoryCache())
    from_litellm = llm.invoke("hello there")  # litellm's hit, which LangChain's cache stores
    from_langchain = llm.invoke("hello there")

    assert len(fp.requests) == 1
    call = from_litellm.response_metadata["policyroute"]
    assert (call["cache_hit"], len(call["attempts"])) == (True, 1)
    entry = from_langchain.response_metadata["policyroute"]
    assert (entry["cache_hit"], entry["attempts"], entry["request_id"]) == (True, [], None)
    assert entry["original_call"] == call
    assert len([r for r in _receipts() if r["kind"] == "call"]) == 2  # none for LangChain's
