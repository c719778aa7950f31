"""Usage no provider can mean (negative counts, counts past 10^10) is replaced by tokens
counted locally, and the receipt says ``usage_estimated``: through ``policyroute.completion``
and ``policyroute.acompletion`` with a policy file, as a user meets it.

(NaN never gets this far: litellm refuses a body carrying it as an invalid response.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from billing_support import assert_counted_locally, policy_file, policy_text, receipts
from exec_support import arun

import policyroute
from policyroute.testing import FakeProvider, Fault, Reply, Usage

pytestmark = pytest.mark.timeout(30)

MODEL = "openai/odd-counts"
MESSAGES = [{"role": "user", "content": "count the lighthouses on this coast, please"}]
TEXT = "there are seven of them"
IMPOSSIBLE = [
    pytest.param((-5, 3), id="negative-input"),
    pytest.param((40, -1), id="negative-output"),
    pytest.param((10**11, 3), id="past-1e10"),
]


def _policy(workdir: Path, fp: FakeProvider) -> Path:
    text = policy_text(fp.openai_base, model=MODEL, name="impossible-usage", receipts=True)
    return policy_file(workdir, text)


def _usage(counts: tuple[int, int]) -> dict[str, int]:
    return {
        "prompt_tokens": counts[0],
        "completion_tokens": counts[1],
        "total_tokens": sum(counts),
    }


@pytest.mark.parametrize("counts", IMPOSSIBLE)
def test_an_answer_with_impossible_usage_is_counted_locally_and_marked(
    fp: FakeProvider, workdir: Path, counts: tuple[int, int]
) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "odd-counts",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(counts),
    }
    fp.script("odd-counts", Fault.raw(json.dumps(body)))

    response = policyroute.completion(policy=_policy(workdir, fp), messages=MESSAGES)

    assert response.choices[0].message.content == TEXT
    assert_counted_locally(workdir, MODEL, MESSAGES, TEXT)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "odd-counts",
        "choices": [choice],
    }


@pytest.mark.parametrize("counts", IMPOSSIBLE)
def test_a_stream_whose_usage_chunk_is_impossible_is_counted_locally_and_marked(
    fp: FakeProvider, workdir: Path, counts: tuple[int, int]
) -> None:
    events = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": TEXT})]
    events.append(_chunk({}, "stop"))
    events.append({**_chunk({}), "choices": [], "usage": _usage(counts)})
    fp.script("odd-counts", Fault.raw_stream(*map(json.dumps, events), done=True))

    async def consume() -> str:
        stream = await policyroute.acompletion(
            policy=_policy(workdir, fp), messages=MESSAGES, stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert arun(consume()) == TEXT
    assert_counted_locally(workdir, MODEL, MESSAGES, TEXT)


def test_sound_usage_is_not_marked(fp: FakeProvider, workdir: Path) -> None:
    fp.script("odd-counts", Reply(text=TEXT, usage=Usage(30, 6)))

    policyroute.completion(policy=_policy(workdir, fp), messages=MESSAGES)

    (attempt,) = receipts(workdir, "attempt")
    assert (attempt["input_tokens"], attempt["output_tokens"]) == (30, 6)
    assert attempt["usage_estimated"] is False
