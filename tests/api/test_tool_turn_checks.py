"""Tool turns that no provider accepts are refused with a RequestError naming the field,
before anything is routed, reserved or sent: a tool message without the id of the call it
answers, an assistant tool call without an id or a function name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import policyroute
from policyroute.api import clear_cache
from policyroute.errors import RequestError
from policyroute.policy.facts import parse_messages
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(30)

POLICY = """
policyroute: 1
name: tool-turns
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_TOOL_TURN_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes: [{{name: default, to: a}}]
receipts: {{sink: none}}
"""

_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
_ASK = {"role": "user", "content": "what is f?"}

# (messages, the field the error must name)
BAD_TURNS: list[tuple[list[dict[str, Any]], str]] = [
    (
        [
            _ASK,
            {"role": "assistant", "content": None, "tool_calls": [_CALL]},
            {"role": "tool", "content": "42"},
        ],
        "'messages[2].tool_call_id'",
    ),
    (
        [
            _ASK,
            {"role": "assistant", "tool_calls": [_CALL]},
            {"role": "tool", "tool_call_id": "", "content": "42"},
        ],
        "'messages[2].tool_call_id'",
    ),
    (
        [
            _ASK,
            {"role": "assistant", "tool_calls": [{k: v for k, v in _CALL.items() if k != "id"}]},
        ],
        "'messages[1].tool_calls[0].id'",
    ),
    (
        [_ASK, {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function"}]}],
        "'messages[1].tool_calls[0].function.name'",
    ),
    ([_ASK, {"role": "assistant", "tool_calls": "f()"}], "'messages[1].tool_calls'"),
    ([_ASK, {"role": "assistant", "tool_calls": [5]}], "'messages[1].tool_calls[0]'"),
]


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, FakeProvider]]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_TOOL_TURN_KEY", "sk-test")
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="ok"))
        path = tmp_path / "policy.yaml"
        path.write_text(POLICY.format(base=fp.openai_base))
        yield path, fp
    clear_cache()


@pytest.mark.parametrize(("messages", "field"), BAD_TURNS)
@pytest.mark.parametrize("stream", [False, True])
def test_a_broken_tool_turn_is_refused_before_it_is_sent(
    policy: tuple[Path, FakeProvider], messages: list[dict[str, Any]], field: str, stream: bool
) -> None:
    path, fp = policy
    with pytest.raises(RequestError, match=field.replace("[", r"\[").replace("]", r"\]")):
        policyroute.completion(policy=str(path), messages=messages, stream=stream)
    assert fp.requests == []


@pytest.mark.parametrize(("messages", "field"), BAD_TURNS)
def test_the_async_entry_refuses_them_too(
    policy: tuple[Path, FakeProvider], messages: list[dict[str, Any]], field: str
) -> None:
    import asyncio

    path, fp = policy
    with pytest.raises(RequestError):
        asyncio.run(policyroute.acompletion(policy=str(path), messages=messages))
    assert fp.requests == []


def test_a_whole_tool_exchange_passes(policy: tuple[Path, FakeProvider]) -> None:
    path, fp = policy
    messages = [
        {"role": "system", "content": "be brief"},
        _ASK,
        {"role": "assistant", "content": None, "tool_calls": [_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    response = policyroute.completion(policy=str(path), messages=messages)
    assert response.choices[0].message.content == "ok"
    assert [m["role"] for m in fp.requests[-1].body["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
    ]


def test_policy_test_requests_are_checked_the_same_way() -> None:
    with pytest.raises(RequestError, match="tool_call_id"):
        parse_messages([_ASK, {"role": "tool", "content": "42"}])
