"""A streamed answer's choices are the ones the provider streamed deltas for.

litellm's stream wrapper sends the finish reason it held back, and its usage, on choice 0
whatever choice the provider numbered: a provider streaming its one choice as index 1 must
still give ``completion(stream=True)`` one choice holding the whole answer, not an empty
choice 0 beside it; and the receipt charges the provider's usage.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from exec_support import arun, receipts_in

from policyroute import api
from policyroute.errors import StreamInterruptedError
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(20)

MESSAGES = [{"role": "user", "content": "hi"}]
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def _chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "model": "a"}
    body.update(created=1, choices=choices)
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body)


def _delta(index: int, **delta: Any) -> dict[str, Any]:
    finish = delta.pop("finish_reason", None)
    return {"index": index, "delta": delta, "finish_reason": finish}


SECOND_CHOICE_ONLY = (
    _chunk([_delta(1, role="assistant", content="")]),
    _chunk([_delta(1, content="hello ")]),
    _chunk([_delta(1, content="world")]),
    _chunk([_delta(1, finish_reason="stop")]),
    _chunk([], USAGE),
)


def _stream(metered_policy: Path, mode: str) -> Any:
    if mode == "sync":
        stream = api.completion(policy=metered_policy, messages=MESSAGES, stream=True)
        chunks = list(stream)
    else:

        async def collect() -> tuple[Any, list[Any]]:
            stream = await api.acompletion(policy=metered_policy, messages=MESSAGES, stream=True)
            return stream, [chunk async for chunk in stream]

        stream, chunks = arun(collect())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello world"
    return stream


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stream_numbering_its_one_choice_1_answers_one_choice(
    fp: FakeProvider, metered_policy: Path, mode: str
) -> None:
    fp.script("a", Fault.raw_stream(*SECOND_CHOICE_ONLY, done=True))

    stream = _stream(metered_policy, mode)

    (choice,) = stream.result.response.choices
    assert (choice.message.content, choice.finish_reason) == ("hello world", "stop")
    assert stream.result.response.usage.completion_tokens == 3
    attempt, call = receipts_in(metered_policy.parent)
    assert (attempt["kind"], attempt["status"], call["kind"]) == ("attempt", "ok", "call")
    assert (attempt["input_tokens"], attempt["output_tokens"]) == (7, 3)
    assert Decimal(attempt["cost"]) == Decimal("0.013")


def test_two_streamed_choices_stay_two_beside_the_wrappers_closing_chunks(
    fp: FakeProvider, metered_policy: Path
) -> None:
    # n=2: choice 0's deltas and litellm's closing chunks (also on choice 0) are one choice.
    fp.script(
        "a",
        Fault.raw_stream(
            _chunk([_delta(0, role="assistant", content="")]),
            _chunk([_delta(0, content="hello ")]),
            _chunk([_delta(1, content="other ")]),
            _chunk([_delta(0, content="world", finish_reason="stop")]),
            _chunk([_delta(1, content="text", finish_reason="stop")]),
            _chunk([], USAGE),
            done=True,
        ),
    )

    stream = api.completion(policy=metered_policy, messages=MESSAGES, stream=True, n=2)
    list(stream)

    texts = [c.message.content for c in stream.result.response.choices]
    assert texts == ["hello world", "other text"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cut_stream_of_two_choices_reports_the_first_choices_text(
    fp: FakeProvider, metered_policy: Path, mode: str
) -> None:
    fp.script(
        "a",
        Fault.raw_stream(
            _chunk([_delta(0, role="assistant", content="")]),
            _chunk([_delta(0, content="hello ")]),
            _chunk([_delta(1, content="other ")]),
            _chunk([_delta(0, content="world")]),
            _chunk([_delta(1, content="text")]),
        ),
    )

    with pytest.raises(StreamInterruptedError) as caught:
        _read_two_choices(metered_policy, mode)

    assert caught.value.partial_text == "hello world"
    attempt, call = receipts_in(metered_policy.parent)
    assert (attempt["status"], call["status"]) == ("interrupted", "interrupted")


def _read_two_choices(metered_policy: Path, mode: str) -> None:
    if mode == "sync":
        list(api.completion(policy=metered_policy, messages=MESSAGES, stream=True, n=2))
        return

    async def collect() -> None:
        stream = await api.acompletion(policy=metered_policy, messages=MESSAGES, stream=True, n=2)
        async for _ in stream:
            pass

    arun(collect())
