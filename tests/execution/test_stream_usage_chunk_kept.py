"""A caller who asks for the stream's usage chunk (``stream_options.include_usage``) gets
exactly one, even when the provider's own was lost after the answer finished (the body cut
before it, or garbage before it): the usage the receipt charged, counted locally. A caller
who did not ask gets none."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from exec_support import arun, receipts_in

from policyroute import api
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hi"}]
WORDS = " ".join(f"w{i}" for i in range(20))
# The fake provider's events for WORDS: a role chunk, one chunk per word, the finish chunk,
# then the usage chunk.
THROUGH_FINISH = 22

ENDINGS = {
    "whole": lambda: Reply(text=WORDS),
    "cut before the usage": lambda: Fault.stream_cut(after=THROUGH_FINISH, reply=Reply(text=WORDS)),
    "garbage before the usage": lambda: Fault.malformed_chunk(
        after=THROUGH_FINISH, reply=Reply(text=WORDS)
    ),
}


def _read(policy: Path, mode: str, asked: bool) -> list[Any]:
    options = {"stream_options": {"include_usage": True}} if asked else {}
    if mode == "sync":
        return list(api.completion(policy=policy, messages=MESSAGES, stream=True, **options))

    async def consume() -> list[Any]:
        stream = await api.acompletion(policy=policy, messages=MESSAGES, stream=True, **options)
        return [chunk async for chunk in stream]

    return arun(asyncio.wait_for(consume(), 20))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_the_usage_chunk_asked_for_comes_once_with_what_was_charged(
    fp: FakeProvider, metered_policy: Path, mode: str, ending: str
) -> None:
    fp.script("a", ENDINGS[ending]())
    chunks = _read(metered_policy, mode, asked=True)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == WORDS
    (usage,) = [c.usage for c in chunks if getattr(c, "usage", None) is not None]
    assert chunks[-1].usage is usage
    attempt, call = receipts_in(metered_policy.parent)
    assert (attempt["status"], call["status"]) == ("ok", "ok")
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        attempt["input_tokens"],
        attempt["output_tokens"],
    )
    assert attempt["usage_estimated"] is (ending != "whole")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_no_usage_chunk_unless_asked(fp: FakeProvider, metered_policy: Path, mode: str) -> None:
    fp.script("a", Fault.stream_cut(after=THROUGH_FINISH, reply=Reply(text=WORDS)))
    chunks = _read(metered_policy, mode, asked=False)
    assert [c for c in chunks if getattr(c, "usage", None) is not None] == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == WORDS
