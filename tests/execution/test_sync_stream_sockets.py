"""Sync streams leave no socket to the provider for the garbage collector.

Each fault a sync stream can meet, alone, ends with the connection closed or back in the
pool of litellm's cached client. Two threads filling litellm's client cache for the same key
at once would each build a sync OpenAI client (each with its own httpx pool) and store it,
the client stored first replaced without being closed, and a connection it left idle in its
pool (an error status such as 429 is read to the end and the connection kept alive) closed by
the collector only, with ``ResourceWarning: unclosed <socket ...>``: policyroute's sync calls
build one client per key (:mod:`policyroute.execution.client_fill`), when the cache starts
cold and again when its entry expired.
"""

from __future__ import annotations

import gc
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from exec_support import RecordingAccounting, StubPolicy, ask, candidate

from policyroute._lazy import import_litellm
from policyroute.execution.executor import Executor, StreamDelta
from policyroute.policy.model import DefaultsSpec, RetrySpec
from policyroute.testing import FakeProvider, Fault, Reply, Step

pytestmark = pytest.mark.timeout(30)
TEXT = "one two three four five six"


@pytest.fixture
def api_key() -> Iterator[str]:
    """A key of its own: litellm's client cache key starts cold, and the clients cached
    under it are closed afterwards."""
    key = f"sk-sockets-{uuid.uuid4().hex}"
    yield key
    cache = import_litellm().in_memory_llm_clients_cache
    for name, client in list(cache.cache_dict.items()):
        if getattr(client, "api_key", None) == key:
            client.close()
            cache.delete_cache(name)


def _executor(fp: FakeProvider, api_key: str, **defaults: Any) -> Executor:
    spec = DefaultsSpec(retry=RetrySpec(attempts=0), **defaults)
    candidates = [candidate(a, fp.openai_base, api_key=api_key) for a in ("a", "b")]
    return Executor(StubPolicy(candidates, defaults=spec), accounting=RecordingAccounting())


def _consume(ex: Executor) -> str:
    parts = []
    for event in ex.stream(ask()):
        if isinstance(event, StreamDelta) and event.chunk.choices:
            parts.append(event.chunk.choices[0].delta.content or "")
    return "".join(parts)


def _collected_sockets(fp: FakeProvider) -> list[str]:
    """The provider's sockets the collector finds unclosed now."""
    port = fp.openai_base.split(":")[2].split("/")[0]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    return [
        str(w.message)
        for w in seen
        if "unclosed <socket" in str(w.message) and f", {port})" in str(w.message)
    ]


FAULTS: dict[str, Callable[[], Step]] = {
    "429": lambda: Fault.status(429),
    "500": lambda: Fault.status(500),
    "reset": Fault.connection_reset,
    "cut": lambda: Fault.stream_cut(after=3, reply=Reply(text=TEXT)),
    "malformed": lambda: Fault.malformed_chunk(after=2, reply=Reply(text=TEXT)),
    "missing_done": lambda: Fault.missing_done(reply=Reply(text=TEXT)),
    # The watchdog closes the response from its thread while the read is blocked.
    "stall": lambda: Fault.stall(after=3, reply=Reply(text=TEXT), timeout=0.8),
    "slow_first_token": lambda: Fault.slow_first_token(0.8, reply=Reply(text=TEXT)),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_one_fault_leaves_no_socket(fp: FakeProvider, api_key: str, fault: str) -> None:
    fp.script("a", FAULTS[fault]())
    fp.set_default("b", Reply(text=TEXT))
    ex = _executor(fp, api_key, first_token_timeout=0.3, idle_timeout=0.2)
    try:
        _consume(ex)
    except Exception:  # a cut after content reached the caller fails the call; fine here
        pass
    assert _collected_sockets(fp) == []


def _build_after_both_missed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both threads miss the cache before either stores its client: the first stream of each
    waits for the other where litellm builds a client, after its cache lookup. When the
    other thread cannot get there (the cache fill is serialized), the wait gives up."""
    from litellm.llms.openai.openai import OpenAIChatCompletion

    both_missed = threading.Barrier(2, timeout=2)
    build = OpenAIChatCompletion._get_sync_http_client

    def build_after_both_missed() -> Any:
        try:
            both_missed.wait()
        except threading.BrokenBarrierError:
            pass
        return build()

    monkeypatch.setattr(
        OpenAIChatCompletion, "_get_sync_http_client", staticmethod(build_after_both_missed)
    )


def _two_threads_after_a_429(fp: FakeProvider, api_key: str) -> list[str]:
    """What two threads streaming at once read; the first attempt of each meets a 429."""
    fp.script("a", Fault.status(429), Fault.status(429))
    fp.set_default("b", Reply(text=TEXT))
    ex = _executor(fp, api_key)
    answers: list[str] = []

    def one(ex: Executor) -> None:
        answers.append(_consume(ex))

    threads = [threading.Thread(target=one, args=(ex,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers  # the executor, whose outcomes hold the 429s' responses, is gone


def _cached_clients(api_key: str) -> dict[str, Any]:
    cache = import_litellm().in_memory_llm_clients_cache
    return {
        name: client
        for name, client in cache.cache_dict.items()
        if getattr(client, "api_key", None) == api_key
    }


def test_threads_filling_the_client_cache_leave_no_socket(
    fp: FakeProvider, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _build_after_both_missed(monkeypatch)
    assert _two_threads_after_a_429(fp, api_key) == [TEXT, TEXT]
    assert len(_cached_clients(api_key)) == 1
    assert _collected_sockets(fp) == []


def test_threads_refilling_an_expired_client_leave_no_socket(
    fp: FakeProvider, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp.set_default("a", Reply(text=TEXT))
    assert _consume(_executor(fp, api_key)) == TEXT
    cache = import_litellm().in_memory_llm_clients_cache
    expired = _cached_clients(api_key)
    assert len(expired) == 1
    for name in expired:
        cache.ttl_dict[name] = 0.0  # its hour is over: the next lookup evicts it
    _build_after_both_missed(monkeypatch)
    assert _two_threads_after_a_429(fp, api_key) == [TEXT, TEXT]
    refilled = _cached_clients(api_key)
    assert refilled.keys() == expired.keys()
    assert list(refilled.values()) != list(expired.values())
    # litellm closes an evicted client after a grace window, holding it weakly meanwhile:
    # closed here, as that would, so that only sockets the refill left can show.
    for client in expired.values():
        client.close()
    del expired
    assert _collected_sockets(fp) == []
