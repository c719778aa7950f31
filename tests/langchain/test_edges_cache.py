"""LangChain's LLM cache in front of ChatPolicyRoute: what makes two calls the same call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import set_llm_cache

from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider


@pytest.fixture
def cache() -> Iterator[InMemoryCache]:
    cache = InMemoryCache()
    set_llm_cache(cache)
    try:
        yield cache
    finally:
        set_llm_cache(None)


def test_a_repeated_call_is_answered_from_the_cache(
    fp: FakeProvider, make_policy: Callable[..., str], cache: InMemoryCache
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting())
    first = llm.invoke("hi")
    again = llm.invoke("hi")
    again_async = asyncio.run(llm.ainvoke("hi"))
    assert len(fp.requests) == 1
    assert again.content == again_async.content == first.content


def test_a_changed_policy_file_misses_the_cache(
    fp: FakeProvider, make_policy: Callable[..., str], cache: InMemoryCache, tmp_path: object
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "p.yaml"
    path.write_text(make_policy())
    ChatPolicyRoute(policy=path, accounting=NullAccounting()).invoke("hi")
    path.write_text(make_policy(extra="# one more line\n"))
    ChatPolicyRoute(policy=path, accounting=NullAccounting()).invoke("hi")
    assert len(fp.requests) == 2


def test_routing_metadata_and_tags_are_part_of_the_cache_key(
    fp: FakeProvider, make_policy: Callable[..., str], cache: InMemoryCache
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), accounting=NullAccounting())
    assert llm.invoke("hi").response_metadata["policyroute"]["route"] == "default"
    # Another route answers these: a cached answer of the default route would be wrong.
    coded = llm.invoke("hi", config={"metadata": {"task": "code"}})
    tagged = asyncio.run(llm.ainvoke("hi", config={"tags": ["strong"]}))
    assert coded.response_metadata["policyroute"]["route"] == "code"
    assert tagged.response_metadata["policyroute"]["route"] == "code"
    assert [r.body["model"] for r in fp.requests] == ["fake-fast", "fake-strong", "fake-strong"]
    # Metadata no route reads (a trace id, say) keeps the cache working.
    llm.invoke("hi", config={"metadata": {"task": "code", "trace": "t-1"}})
    llm.invoke("hi", config={"metadata": {"trace": "t-2"}})
    assert len(fp.requests) == 3


def test_a_flat_dotted_metadata_key_a_route_reads_is_part_of_the_cache_key(
    fp: FakeProvider, cache: InMemoryCache, make_policy: Callable[..., str]
) -> None:
    """A route on metadata.user.id reads a flat "user.id" key too: calls that differ only there
    are routed apart, and must not share an answer."""
    policy = make_policy().replace(
        "routes:\n", "routes:\n  - name: vip\n    when: {metadata.user.id: u1}\n    to: strong\n", 1
    )
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    plain = llm.invoke("hi", config={"metadata": {"user.id": "u2"}})
    vip = llm.invoke("hi", config={"metadata": {"user.id": "u1"}})
    assert plain.response_metadata["policyroute"]["route"] == "default"
    assert vip.response_metadata["policyroute"]["route"] == "vip"
    assert len(fp.requests) == 2
