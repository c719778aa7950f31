"""A model that thinks before it writes has begun answering: the first-token deadline is met
by its first reasoning, and it is not cut (and paid for twice) for thinking long.

While it only thinks, each gap between reasoning chunks is held to ``first_token_timeout``
(or ``idle_timeout`` when set): thinking that stalls still falls over.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from billing_support import CLAUDE, policy_file, policy_text, receipts
from exec_support import arun

import policyroute
from policyroute.errors import PolicyRouteError
from policyroute.testing import FakeProvider, Fault, Reply

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "think, then answer"}]
# Twelve reasoning deltas 0.08 s apart: about 1 s of thinking before the first content,
# against a first-token deadline of 0.4 s.
THOUGHT = " ".join(f"step{i}" for i in range(12))
SLOW_THINKER = Reply(thinking=THOUGHT, text="done", chunk_delay=0.08)


def _policy(workdir: Path, fp: FakeProvider) -> Path:
    text = policy_text(
        fp.anthropic_base,
        model=f"anthropic/{CLAUDE}",
        name="thinking-deadline",
        receipts=True,
        first_token="0.4s",
    )
    return policy_file(workdir, text)


def _text(chunks: list[object]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # type: ignore[attr-defined]


def test_sync_stream_that_thinks_past_the_first_token_deadline_answers(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script(CLAUDE, SLOW_THINKER)
    policy = _policy(workdir, fp)

    chunks = list(policyroute.completion(policy=policy, messages=MESSAGES, stream=True))

    assert _text(chunks) == "done"
    assert len(fp.requests_for(CLAUDE)) == 1
    (attempt,) = receipts(workdir, "attempt")
    assert attempt["status"] == "ok"
    # Time to first token is the first content's, after the thinking.
    assert attempt["ttft_ms"] > 400


def test_async_stream_that_thinks_past_the_first_token_deadline_answers(
    fp: FakeProvider, workdir: Path
) -> None:
    fp.script(CLAUDE, SLOW_THINKER)
    policy = _policy(workdir, fp)

    async def run() -> str:
        stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
        return _text([c async for c in stream])

    assert arun(run()) == "done"
    assert len(fp.requests_for(CLAUDE)) == 1
    (attempt,) = receipts(workdir, "attempt")
    assert attempt["status"] == "ok"


@pytest.mark.parametrize("api", ["sync", "async"])
def test_thinking_that_stalls_is_still_cut(fp: FakeProvider, workdir: Path, api: str) -> None:
    # Two reasoning deltas, then nothing for 3 s: longer than the 0.4 s deadline.
    fp.script(CLAUDE, Fault.stall(after=5, timeout=3, reply=Reply(thinking="a b c", text="late")))
    policy = _policy(workdir, fp)

    def sync() -> None:
        list(policyroute.completion(policy=policy, messages=MESSAGES, stream=True))

    async def consume() -> None:
        stream = await policyroute.acompletion(policy=policy, messages=MESSAGES, stream=True)
        async for _ in stream:
            pass

    with pytest.raises(PolicyRouteError, match=r"0\.4s"):
        sync() if api == "sync" else arun(consume())
    (attempt,) = receipts(workdir, "attempt")
    assert attempt["error_class"] == "timeout"
