"""Calls made in one ``asyncio.run`` after another leave no litellm client of a finished loop
behind in litellm's cache: each loop's clients are closed as the loop ends, instead of being
left with their sockets for the garbage collector."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import policyroute
from policyroute._lazy import import_litellm
from policyroute.api import clear_cache
from policyroute.testing import FakeProvider, Reply

POLICY = """
policyroute: 1
name: loop-cleanup
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_LOOP_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
  b: {{model: anthropic/fake-b, api_base: "{abase}", api_key: "${{PR_LOOP_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes:
  - name: openai
    when: {{metadata.wire: {{eq: openai}}}}
    to: a
  - name: anthropic
    to: b
receipts: {{sink: none}}
defaults: {{max_tokens: 10}}
"""


@pytest.fixture
def fp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setenv("PR_LOOP_KEY", "sk-loop-0123456789")
    with FakeProvider() as provider:
        provider.set_default("*", Reply(text="hi"))
        yield provider
    clear_cache()


def _calls(policy: str, wires: tuple[str, ...], loops: list[int]) -> list[str]:
    async def calls() -> list[str]:
        loops.append(id(asyncio.get_running_loop()))
        answers = []
        for wire in wires:
            response = await policyroute.acompletion(
                policy=policy,
                messages=[{"role": "user", "content": "hello"}],
                metadata={"wire": wire},
            )
            answers.append(str(response.choices[0].message.content))
            stream = await policyroute.acompletion(
                policy=policy,
                messages=[{"role": "user", "content": "hello"}],
                metadata={"wire": wire},
                stream=True,
            )
            answers.append("".join([c.choices[0].delta.content or "" async for c in stream]))
        return answers

    return asyncio.run(calls())


def test_no_client_of_a_finished_loop_stays_cached(fp: FakeProvider) -> None:
    policy = POLICY.format(base=fp.openai_base, abase=fp.anthropic_base)
    loops: list[int] = []
    for _ in range(3):
        # The OpenAI wire only: litellm's Anthropic handler also keeps aiohttp sessions
        # outside its client cache, which this does not reach.
        assert _calls(policy, ("openai",), loops) == ["hi"] * 2
    cached = import_litellm().in_memory_llm_clients_cache.cache_dict
    assert [k for k in cached if any(str(k).endswith(f"-{n}") for n in loops)] == []
