"""litellm's client cache filled once per key by policyroute's sync calls, and only by them.

Each test runs on a fresh ``LLMClientCache`` in place of litellm's, and its own keys.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from policyroute._lazy import import_litellm
from policyroute.execution.client_fill import one_client_per_key, with_one_client_per_key

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> Any:
    from litellm.caching.llm_caching_handler import LLMClientCache

    fresh = LLMClientCache()
    monkeypatch.setattr(import_litellm(), "in_memory_llm_clients_cache", fresh)
    return fresh


@pytest.fixture
def key() -> str:
    return f"client-{uuid.uuid4().hex}"


def _client_for(cache: Any, key: str, built: list[object], wait: Callable[[], None]) -> object:
    """What litellm's client getters do: look up, build on a miss, store."""
    found = cache.get_cache(key)
    if found is not None:
        return found
    wait()
    client = object()
    built.append(client)
    cache.set_cache(key=key, value=client, ttl=3600)
    return client


def _both(call: Callable[[], object]) -> list[object]:
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(call())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


def _meet(timeout: float) -> Callable[[], None]:
    """A wait both threads pass only if both reach it, that is if both missed."""
    barrier = threading.Barrier(2, timeout=timeout)

    def wait() -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass

    return wait


def test_threads_missing_one_key_build_one_client(cache: Any, key: str) -> None:
    built: list[object] = []
    meet = _meet(0.5)
    with_fill = with_one_client_per_key(lambda: _client_for(cache, key, built, meet))
    got = _both(with_fill)
    assert len(built) == 1
    assert got == [built[0], built[0]]
    assert cache.get_cache(key) is built[0]


def test_calls_outside_policyroute_fill_the_cache_as_litellm_does(cache: Any, key: str) -> None:
    # Users' own litellm calls keep litellm's behaviour, race included.
    built: list[object] = []
    with one_client_per_key():
        pass  # the cache is wrapped from here on
    meet = _meet(5)
    got = _both(lambda: _client_for(cache, key, built, meet))
    assert len(built) == 2
    assert sorted(map(id, got)) == sorted(map(id, built))


def test_a_failed_build_lets_the_next_caller_build(cache: Any, key: str) -> None:
    def failing() -> None:
        with one_client_per_key():
            assert cache.get_cache(key) is None
            raise RuntimeError("the client could not be built")

    with pytest.raises(RuntimeError):
        failing()
    built: list[object] = []
    other = threading.Thread(
        target=with_one_client_per_key(lambda: _client_for(cache, key, built, lambda: None))
    )
    other.start()
    other.join(timeout=2)
    assert not other.is_alive()
    assert len(built) == 1
    # Still serialized after the failure: threads missing it together build one client.
    cache.delete_cache(key)
    built.clear()
    _both(with_one_client_per_key(lambda: _client_for(cache, key, built, _meet(0.5))))
    assert len(built) == 1


def test_a_key_looked_up_and_not_stored_is_not_locked_again(cache: Any, key: str) -> None:
    with one_client_per_key():
        assert cache.get_cache(key) is None  # litellm's lookup of something it does not store
    looked: list[object] = []
    holding = threading.Event()
    release = threading.Event()

    def holds_its_lookup() -> None:
        with one_client_per_key():
            looked.append(cache.get_cache(key))
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=holds_its_lookup)
    holder.start()
    assert holding.wait(5)
    try:
        done = threading.Event()

        def looks_up() -> None:
            with one_client_per_key():
                looked.append(cache.get_cache(key))
            done.set()

        threading.Thread(target=looks_up).start()
        assert done.wait(2)  # not held back by the other call's lookup
    finally:
        release.set()
        holder.join()
    assert looked == [None, None]


def test_a_cache_replaced_by_its_user_is_wrapped_at_the_next_call(
    cache: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from litellm.caching.llm_caching_handler import LLMClientCache

    with one_client_per_key():
        pass
    replaced = LLMClientCache()
    monkeypatch.setattr(import_litellm(), "in_memory_llm_clients_cache", replaced)
    built: list[object] = []
    _both(with_one_client_per_key(lambda: _client_for(replaced, key, built, _meet(0.5))))
    assert len(built) == 1


def test_a_cache_unlike_litellms_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    class Odd:
        def get_cache(self, key: str) -> None:
            return None

    odd = Odd()
    monkeypatch.setattr(import_litellm(), "in_memory_llm_clients_cache", odd)
    with one_client_per_key():
        assert odd.get_cache("k") is None
    assert "get_cache" not in vars(odd)
