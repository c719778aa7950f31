"""Calls made in one ``asyncio.run`` after another leave nothing in litellm's evicted-client
closer.

policyroute closes each ending loop's cached litellm clients itself and deletes them from
litellm's client cache; litellm then queues each deleted client it built for a deferred close
on the loop it was deleted on. That loop never runs again, so without policyroute disowning the
clients it closed, every ``asyncio.run`` left one queued entry behind for good, and a full
queue (10,000 entries) stops litellm from closing any evicted client.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest
from litellm.caching.evicted_client_closer import default_evicted_client_closer

import policyroute
from policyroute.api import clear_cache
from policyroute.testing import FakeProvider, Reply

LOOPS = 4
POLICY = """
policyroute: 1
name: closer-backlog
models:
  a: {{model: openai/fake-a, api_base: "{base}", api_key: "${{PR_CLOSER_KEY}}",
       price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes:
  - name: default
    to: a
receipts: {{sink: none}}
defaults: {{max_tokens: 10}}
"""


@pytest.fixture
def fp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.setenv("PR_CLOSER_KEY", "sk-closer-0123456789")
    with FakeProvider() as provider:
        provider.set_default("*", Reply(text="hi"))
        yield provider
    clear_cache()


async def _call(policy: str) -> str:
    response = await policyroute.acompletion(
        policy=policy, messages=[{"role": "user", "content": "hello"}]
    )
    return str(response.choices[0].message.content)


def test_loops_that_ended_leave_no_queued_close(fp: FakeProvider, tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "policy.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(POLICY.format(base=fp.openai_base))
    assert asyncio.run(_call(path)) == "hi"  # the first loop imports and warms up
    before = default_evicted_client_closer.pending_count
    answers = [asyncio.run(_call(path)) for _ in range(LOOPS)]
    assert answers == ["hi"] * LOOPS
    assert default_evicted_client_closer.pending_count == before
