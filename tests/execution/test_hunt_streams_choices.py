"""A streamed answer's choices are the ones the provider streamed deltas for.

litellm's stream wrapper sends the finish reason it held back, and its usage, on choice 0
whatever choice the provider numbered: a provider streaming its one choice as index 1 must
still give ``completion(stream=True)`` one choice holding the whole answer, not an empty
choice 0 beside it; and the receipt charges the provider's usage.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from exec_support import arun

from policyroute import api
from policyroute.errors import StreamInterruptedError
from policyroute.testing import FakeProvider, Fault

pytestmark = pytest.mark.timeout(20)
os.environ.setdefault("HUNT_STREAMS_KEY", "sk-test")

POLICY = """
policyroute: 1
name: hunt-streams
models:
  a:
    model: openai/a
    api_base: {base}
    api_key: ${{HUNT_STREAMS_KEY}}
    price: {{input_per_mtok: 1000, output_per_mtok: 2000}}
budgets:
  - name: daily
    limit_usd: 100
    window: day
store: {{backend: sqlite, path: budgets.db}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
routes: [{{name: default, to: a}}]
defaults: {{max_tokens: 64, retry: {{attempts: 0}}}}
"""
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


@pytest.fixture
def policy(fp: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=fp.openai_base))
    api.clear_cache()
    yield path
    api.clear_cache()


def _receipts(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "receipts.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _stream(policy: Path, mode: str) -> Any:
    if mode == "sync":
        stream = api.completion(policy=policy, messages=MESSAGES, stream=True)
        chunks = list(stream)
    else:

        async def collect() -> tuple[Any, list[Any]]:
            stream = await api.acompletion(policy=policy, messages=MESSAGES, stream=True)
            return stream, [chunk async for chunk in stream]

        stream, chunks = arun(collect())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello world"
    return stream


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_stream_numbering_its_one_choice_1_answers_one_choice(
    fp: FakeProvider, policy: Path, mode: str
) -> None:
    fp.script("a", Fault.raw_stream(*SECOND_CHOICE_ONLY, done=True))

    stream = _stream(policy, mode)

    (choice,) = stream.result.response.choices
    assert (choice.message.content, choice.finish_reason) == ("hello world", "stop")
    assert stream.result.response.usage.completion_tokens == 3
    attempt, call = _receipts(policy.parent)
    assert (attempt["kind"], attempt["status"], call["kind"]) == ("attempt", "ok", "call")
    assert (attempt["input_tokens"], attempt["output_tokens"]) == (7, 3)
    assert Decimal(attempt["cost"]) == Decimal("0.013")


def test_two_streamed_choices_stay_two_beside_the_wrappers_closing_chunks(
    fp: FakeProvider, policy: Path
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

    stream = api.completion(policy=policy, messages=MESSAGES, stream=True, n=2)
    list(stream)

    texts = [c.message.content for c in stream.result.response.choices]
    assert texts == ["hello world", "other text"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cut_stream_of_two_choices_reports_the_first_choices_text(
    fp: FakeProvider, policy: Path, mode: str
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
        _read_two_choices(policy, mode)

    assert caught.value.partial_text == "hello world"
    attempt, call = _receipts(policy.parent)
    assert (attempt["status"], call["status"]) == ("interrupted", "interrupted")


def _read_two_choices(policy: Path, mode: str) -> None:
    if mode == "sync":
        list(api.completion(policy=policy, messages=MESSAGES, stream=True, n=2))
        return

    async def collect() -> None:
        stream = await api.acompletion(policy=policy, messages=MESSAGES, stream=True, n=2)
        async for _ in stream:
            pass

    arun(collect())
