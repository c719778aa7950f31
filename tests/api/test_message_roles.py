"""Messages no provider takes are refused with a RequestError naming the message and field,
before anything is routed, reserved or sent: a role that is none of OpenAI's, a user, system
or tool message without content, an assistant message with nothing to say, a function message
without its function's name, a tool message that answers no call of the turn before it.
litellm checks none of these: OpenAI answered them with a 400 after the reservation was made,
and litellm's conversions for Anthropic and Gemini failed on them before sending."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litellm.types.utils import Message

import policyroute
from policyroute.api import clear_cache
from policyroute.errors import RequestError
from policyroute.policy.facts import parse_messages, request_from_mapping
from policyroute.testing import FakeProvider, Reply

pytestmark = pytest.mark.timeout(60)

POLICY = """
policyroute: 1
name: message-roles
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_ROLES_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
routes: [{{name: default, to: a}}]
budgets:
  - name: daily
    limit_usd: 10
    window: day
store: {{backend: sqlite, path: budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults: {{max_tokens: 16}}
"""

_ASK = {"role": "user", "content": "what is f?"}
_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
_CALLS = {"role": "assistant", "content": None, "tool_calls": [_CALL]}

# (messages, the start of what the error says)
BAD: list[tuple[list[dict[str, Any]], str]] = [
    ([{"role": "bot", "content": "hi"}], "request field 'messages[0].role' is 'bot'"),
    ([_ASK, {"role": "model", "content": "f is 1"}], "'messages[1].role' is 'model' (did you"),
    ([{"role": "human", "content": "hi"}], "'messages[0].role' is 'human' (did you mean 'user'?)"),
    ([{"role": "User", "content": "hi"}], "'messages[0].role' is 'User' (did you mean 'user'?)"),
    ([{"role": "", "content": "hi"}], "request field 'messages[0].role' must be a non-empty"),
    ([{"role": 1, "content": "hi"}], "request field 'messages[0].role' must be a non-empty"),
    ([{"role": "user"}], "request field 'messages[0].content' is missing: a user message"),
    ([{"role": "user", "content": None}], "'messages[0].content' is missing: a user message"),
    ([{"role": "system"}, _ASK], "'messages[0].content' is missing: a system message"),
    ([{"role": "developer"}, _ASK], "'messages[0].content' is missing: a developer message"),
    ([_ASK, _CALLS, {"role": "tool", "tool_call_id": "call_1"}], "'messages[2].content' is miss"),
    ([_ASK, {"role": "assistant"}, _ASK], "'messages[1].content' is missing: an assistant"),
    ([_ASK, {"role": "assistant", "content": None, "tool_calls": []}, _ASK], "'messages[1].cont"),
    ([{"role": "user", "content": {"text": "hi"}}], "'messages[0].content' must be a string or"),
    ([_ASK, {"role": "function", "content": "1"}], "request field 'messages[1].name' must be"),
    (
        [_ASK, {"role": "tool", "tool_call_id": "call_1", "content": "1"}],
        "request field 'messages[1].tool_call_id' is 'call_1', but no assistant message comes",
    ),
    (
        [_ASK, _CALLS, {"role": "tool", "tool_call_id": "call_9", "content": "1"}],
        "'messages[2].tool_call_id' is 'call_9', but the latest assistant message before it,"
        " messages[1], made no such call",
    ),
    (
        # The answer to an earlier turn's call, after a later assistant turn.
        [
            _ASK,
            _CALLS,
            {"role": "tool", "tool_call_id": "call_1", "content": "1"},
            {"role": "assistant", "content": "f is 1"},
            {"role": "tool", "tool_call_id": "call_1", "content": "1"},
        ],
        "'messages[4].tool_call_id' is 'call_1', but the latest assistant message before it,"
        " messages[3]",
    ),
]

# Messages litellm and the providers take, which must reach the provider as given.
GOOD: list[list[Any]] = [
    [{"role": "developer", "content": "be brief"}, {"role": "user", "content": ""}],
    [{"role": "system", "content": [{"type": "text", "text": "be brief"}]}, _ASK],
    [{"role": "user", "content": "hi", "name": "ann"}],
    [
        _ASK,
        _CALLS,
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "1"}]},
    ],
    # Parallel calls answered in any order, with a user remark between them.
    [
        _ASK,
        {"role": "assistant", "tool_calls": [_CALL, {**_CALL, "id": "call_2"}]},
        {"role": "tool", "tool_call_id": "call_2", "content": "2"},
        {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": "1",
            "cache_control": {"type": "ephemeral"},
        },
    ],
    # A legacy function call and its answer.
    [
        _ASK,
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "1"},
    ],
    # Assistant turns without content that carry something else to send back.
    [_ASK, {"role": "assistant", "audio": {"id": "audio_1"}}, _ASK],
    [_ASK, {"role": "assistant", "content": None, "refusal": "I can't help with that."}, _ASK],
    [_ASK, {"role": "assistant", "reasoning_content": "thinking about f"}, _ASK],
    [
        _ASK,
        {
            "role": "assistant",
            "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}],
        },
        _ASK,
    ],
    [_ASK, {"role": "assistant", "content": ""}, _ASK],
    # The answer's own message object put back into the history, as litellm's tool loops do.
    [_ASK, Message(content="f is 1"), _ASK],
    [
        _ASK,
        Message(content=None, tool_calls=[_CALL]),
        {"role": "tool", "tool_call_id": "call_1", "content": "1"},
    ],
]


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, FakeProvider]]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_ROLES_KEY", "sk-test")
    with FakeProvider() as fp:
        fp.set_default("*", Reply(text="ok"))
        path = tmp_path / "policy.yaml"
        path.write_text(POLICY.format(base=fp.openai_base))
        yield path, fp
    clear_cache()
    from policyroute.accounting import _clear_default_cache

    _clear_default_cache()


def _open_reservations(tmp_path: Path) -> list[Any]:
    import contextlib
    import sqlite3

    if not (tmp_path / "budgets.sqlite3").exists():
        return []
    with contextlib.closing(sqlite3.connect(tmp_path / "budgets.sqlite3")) as db:
        return db.execute("select * from open_reservations").fetchall()


@pytest.mark.parametrize(("messages", "said"), BAD)
@pytest.mark.parametrize("stream", [False, True])
def test_a_message_no_provider_takes_is_refused_before_it_is_sent(
    policy: tuple[Path, FakeProvider],
    tmp_path: Path,
    messages: list[dict[str, Any]],
    said: str,
    stream: bool,
) -> None:
    path, fp = policy
    with pytest.raises(RequestError) as info:
        policyroute.completion(policy=str(path), messages=messages, stream=stream)
    assert said in str(info.value)
    assert isinstance(info.value, ValueError)
    assert fp.requests == []
    assert _open_reservations(tmp_path) == []
    # Refused before the call began: no attempt, so no receipt.
    assert not (tmp_path / "receipts.jsonl").exists()


@pytest.mark.parametrize(("messages", "said"), BAD)
@pytest.mark.parametrize("stream", [False, True])
def test_the_async_entry_refuses_them_too(
    policy: tuple[Path, FakeProvider], messages: list[dict[str, Any]], said: str, stream: bool
) -> None:
    path, fp = policy

    async def main() -> None:
        await policyroute.acompletion(policy=str(path), messages=messages, stream=stream)

    with pytest.raises(RequestError) as info:
        asyncio.run(main())
    assert said in str(info.value)
    assert fp.requests == []


def test_the_roles_are_listed_where_one_is_unknown(policy: tuple[Path, FakeProvider]) -> None:
    path, _ = policy
    with pytest.raises(RequestError) as info:
        policyroute.completion(policy=str(path), messages=[{"role": "narrator", "content": "x"}])
    assert str(info.value) == (
        "request field 'messages[0].role' is 'narrator', which no provider takes: a message's"
        " role is 'system', 'developer', 'user', 'assistant', 'tool' or 'function'"
    )


@pytest.mark.parametrize("messages", GOOD)
def test_messages_providers_take_reach_the_provider(
    policy: tuple[Path, FakeProvider], messages: list[Any]
) -> None:
    path, fp = policy
    response = policyroute.completion(policy=str(path), messages=messages)
    assert response.choices[0].message.content == "ok"
    (sent,) = fp.requests
    assert isinstance(sent.body, dict)
    # litellm sends a developer message as a system one to models it does not know take it.
    assert [m["role"].replace("developer", "system") for m in sent.body["messages"]] == [
        m["role"].replace("developer", "system") if isinstance(m, dict) else "assistant"
        for m in messages
    ]


def test_litellm_modify_params_lets_it_drop_an_unanswerable_tool_message(
    policy: tuple[Path, FakeProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With modify_params litellm removes a tool message answering no call for the providers
    # that refuse one: not certainly invalid, so it is left to litellm.
    import litellm

    monkeypatch.setattr(litellm, "modify_params", True)
    path, fp = policy
    orphan = {"role": "tool", "tool_call_id": "call_1", "content": "1"}
    policyroute.completion(policy=str(path), messages=[_ASK, orphan])
    assert len(fp.requests) == 1


def test_policy_test_and_explain_requests_are_checked_the_same_way() -> None:
    with pytest.raises(RequestError, match=r"'messages\[1\]\.role' is 'bot'"):
        parse_messages([_ASK, {"role": "bot", "content": "hi"}])
    with pytest.raises(RequestError, match=r"'messages\[0\]\.content' is missing"):
        request_from_mapping({"messages": [{"role": "system"}]})
    with pytest.raises(RequestError, match=r"'messages\[1\]\.tool_call_id' is 'c1', but no"):
        request_from_mapping(
            {"messages": [_ASK, {"role": "tool", "tool_call_id": "c1", "content": "1"}]}
        )


def test_a_refused_message_leaves_the_budget_as_it_was(
    policy: tuple[Path, FakeProvider], tmp_path: Path
) -> None:
    path, fp = policy
    policyroute.completion(policy=str(path), messages=[_ASK])
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    with pytest.raises(RequestError):
        policyroute.completion(policy=str(path), messages=[_ASK, {"role": "bot", "content": "x"}])
    assert (tmp_path / "receipts.jsonl").read_text().splitlines() == lines
    assert [json.loads(line)["kind"] for line in lines] == ["attempt", "call"]
    assert _open_reservations(tmp_path) == []
    assert len(fp.requests) == 1
