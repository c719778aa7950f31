"""A malformed call is refused with a RequestError naming the field, before anything is sent
or reserved: through policyroute.completion/acompletion, and the checks themselves."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import policyroute
from policyroute import ChatPolicyRoute
from policyroute.api import clear_cache
from policyroute.errors import BadRequestError, RequestError
from policyroute.policy.facts import request_from_mapping
from policyroute.request_checks import check_call, check_params, check_parts
from policyroute.testing import FakeProvider, Reply

POLICY = """
policyroute: 1
name: request-checks
models:
  a:
    model: openai/fake-a
    api_base: {base}
    api_key: ${{PR_TEST_KEY}}
    price: {{input_per_mtok: 1, output_per_mtok: 2}}
    capabilities: {{tools: true, json_schema: true}}
    max_server_tool_cost_usd: 0.05  # a provider's own tool (web search) is admitted under a budget
routes:
  - name: default
    to: a
budgets:
  - name: daily
    limit_usd: 10
    window: day
store: {{backend: sqlite, path: budgets.sqlite3}}
receipts: {{sink: jsonl, path: receipts.jsonl}}
defaults: {{max_tokens: 16}}
"""

HI = [{"role": "user", "content": "hi"}]

# (keyword arguments of the call, the field the error must name)
BAD_CALLS: list[tuple[dict[str, Any], str]] = [
    ({"n": "two"}, "'n'"),
    ({"n": 0}, "'n'"),
    ({"max_tokens": "lots"}, "'max_tokens'"),
    ({"max_tokens": -5}, "'max_tokens'"),
    ({"max_tokens": True}, "'max_tokens'"),
    ({"max_completion_tokens": 2.5}, "'max_completion_tokens'"),
    ({"temperature": "hot"}, "'temperature'"),
    ({"stop": 5}, "'stop'"),
    ({"stop": ["ok", 5]}, "'stop'"),
    ({"timeout": "soon"}, "'timeout'"),
    ({"timeout": 0}, "'timeout'"),
    # Providers read a seed as a signed 64-bit integer: OpenAI answers any other with a 400.
    ({"seed": 2**63}, "'seed' must be a whole number from -2**63 to 2**63 - 1, got 92233"),
    ({"seed": -(2**63) - 1}, "'seed'"),
    ({"seed": "42"}, "'seed'"),
    # litellm's float() of these failed before sending, read as an unreadable answer.
    ({"timeout": [5]}, "'timeout' must be a positive number of seconds or an httpx.Timeout"),
    ({"timeout": {"read": 5}}, "'timeout'"),
    ({"parallel_tool_calls": "yes"}, "'parallel_tool_calls'"),
    ({"tools": {"type": "function"}}, "'tools'"),
    ({"tools": [5]}, "'tools[0]'"),
    ({"tools": [{"type": "function", "function": 5}]}, "'tools[0].function'"),
    ({"tools": [{"type": "function", "function": {"parameters": {}}}]}, "'tools[0].function.name'"),
    ({"tools": [{"function": {"name": "f", "parameters": "x"}}]}, "'tools[0].function.parameters'"),
    ({"tool_choice": 3}, "'tool_choice'"),
    ({"response_format": 5}, "'response_format'"),
    ({"response_format": "json"}, "'response_format'"),
    ({"response_format": int}, "or a pydantic model class, got"),
    # litellm converts these before sending and failed on other shapes with errors it reports
    # as a connection failure or an unreadable answer: retried, fallen over, breakers opened.
    ({"response_format": {"type": "json_schema"}}, "'response_format.json_schema'"),
    ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "json_schema'"),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": "x"}}},
        "'response_format.json_schema.schema'",
    ),
    ({"extra_body": "x"}, "'extra_body'"),
    ({"extra_body": ["a"]}, "'extra_body'"),
    ({"extra_body": 5}, "'extra_body'"),
    ({"web_search_options": "low"}, "'web_search_options'"),
    # litellm refuses these in a user message with a bare Exception, read as a connection
    # failure: the call was retried, fell over and counted against the deployment's breaker.
    (
        {"messages": [{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]},
        "'messages[0].content[0].type' is 'refusal'",
    ),
    (
        {"messages": [HI[0], {"role": "user", "content": [{"type": "tool_result", "x": 1}]}]},
        "'messages[1].content[0].type' is 'tool_result'",
    ),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "content[0].text"),
    ({"messages": [{"role": "user", "content": ["hi"]}]}, "'messages[0].content[0]'"),
    ({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}, "content[0].type"),
]


@pytest.fixture
def fp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PR_TEST_KEY", "sk-test")
    with FakeProvider() as provider:
        provider.set_default("*", Reply(text="ok"))
        yield provider
    clear_cache()
    from policyroute.accounting import _clear_default_cache

    _clear_default_cache()


def _policy(tmp_path: Path, fp: FakeProvider) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(base=fp.openai_base))
    return path


def _reserved(tmp_path: Path) -> list[Any]:
    """The reservations the SQLite store holds (a missing table fails the test)."""
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(tmp_path / "budgets.sqlite3")) as db:
        return db.execute("select * from open_reservations").fetchall()


@pytest.mark.parametrize(("kwargs", "field"), BAD_CALLS)
@pytest.mark.parametrize("stream", [False, True])
def test_a_malformed_call_is_refused_before_it_is_sent(
    tmp_path: Path, fp: FakeProvider, kwargs: dict[str, Any], field: str, stream: bool
) -> None:
    policy = _policy(tmp_path, fp)
    call = {"messages": HI, **kwargs}

    with pytest.raises(RequestError, match=r"^request (parameter|field) ") as info:
        policyroute.completion(policy=policy, stream=stream, **call)

    assert field in str(info.value)
    assert fp.requests == []
    assert not (tmp_path / "budgets.sqlite3").exists() or _reserved(tmp_path) == []


@pytest.mark.parametrize(("kwargs", "field"), BAD_CALLS[:3] + BAD_CALLS[-3:])
def test_the_async_entry_refuses_the_same_calls(
    tmp_path: Path, fp: FakeProvider, kwargs: dict[str, Any], field: str
) -> None:
    policy = _policy(tmp_path, fp)
    call = {"messages": HI, **kwargs}

    async def main() -> None:
        await policyroute.acompletion(policy=policy, **call)

    with pytest.raises(RequestError) as info:
        asyncio.run(main())
    assert field in str(info.value)
    assert fp.requests == []


def test_well_formed_calls_pass_and_reach_the_provider(tmp_path: Path, fp: FakeProvider) -> None:
    class Answer(BaseModel):
        text: str

    policy = _policy(tmp_path, fp)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    pdf = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQ="}}
    wav = {"data": "UklGRiQAAABXQVZF", "format": "wav"}
    good: list[dict[str, Any]] = [
        {"max_tokens": 5, "n": 1, "temperature": 0, "top_p": 0.5, "stop": "\n", "seed": 3},
        {"stop": ["a", "b"], "timeout": 30, "max_tokens": None},
        {"seed": 2**63 - 1},
        {"seed": -(2**63)},
        {"timeout": httpx.Timeout(30.0, connect=5.0)},
        {"tools": [tool], "tool_choice": "auto", "parallel_tool_calls": False},
        {"tools": [{"type": "web_search"}]},  # a provider's own tool type passes untouched
        {"response_format": {"type": "json_object"}},
        {"response_format": Answer},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "a"}}},
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": Answer.model_json_schema(), "strict": True},
            }
        },
        {"extra_body": {"vendor_knob": 1}, "web_search_options": {"search_context_size": "low"}},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "see"}, pdf]}]},
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": wav}]}]},
        {"user": "u-1", "logit_bias": {"50256": -100}},  # not checked: passed on untouched
    ]
    for kwargs in good:
        policyroute.completion(policy=policy, **{"messages": HI, **kwargs})
    assert len(fp.requests) == len(good)
    assert fp.requests[0].body["max_tokens"] == 5


def test_policy_test_and_explain_requests_are_checked_the_same_way() -> None:
    with pytest.raises(RequestError, match="'n'"):
        request_from_mapping({"messages": "hi", "n": "two"})
    with pytest.raises(RequestError, match=r"'tools\[0\]\.function\.name'"):
        request_from_mapping({"messages": "hi", "tools": [{"function": {}}]})
    with pytest.raises(RequestError, match=r"content\[0\]\.text"):
        request_from_mapping({"messages": [{"role": "user", "content": [{"type": "text"}]}]})


def test_the_checks_pass_what_they_do_not_know() -> None:
    check_params({})
    check_params({"max_tokens": None, "vendor_knob": "anything"})
    check_call({}, tools=[], tool_choice={"type": "function", "function": {"name": "f"}})
    check_parts([{"role": "user", "content": "plain text is not parts"}])
    check_parts([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])


def test_a_parameter_json_cannot_carry_is_a_bad_request_not_retried(
    tmp_path: Path, fp: FakeProvider
) -> None:
    # Not checked up front (the parameter is the provider's), but the request cannot be encoded:
    # the caller's input, so no retry and no other deployment, and the reservation is released.
    policy = _policy(tmp_path, fp)
    with pytest.raises(BadRequestError, match="JSON cannot carry") as info:
        policyroute.completion(policy=policy, messages=HI, vendor_option=object())
    assert info.value.error_class == "bad_request"
    assert fp.requests == []
    assert _reserved(tmp_path) == []
    lines = (tmp_path / "receipts.jsonl").read_text().splitlines()
    receipts = [json.loads(line) for line in lines]
    attempts = [r for r in receipts if r["kind"] == "attempt"]
    assert [(r["status"], r["error_class"], r["cost"]) for r in attempts] == [
        ("error", "bad_request", "0.000000")
    ]


# ------------------------------------------------------------------ NaN and infinity
# JSON has neither, and a provider answers them with a 400 only after the budget reservation
# was made: they are refused before anything is reserved or sent, the parameter named.

NAN, INF = math.nan, math.inf

# (keyword arguments of the call, the place the error must name)
NON_FINITE: list[tuple[dict[str, Any], str]] = [
    ({"temperature": NAN}, "'temperature'"),
    ({"temperature": INF}, "'temperature'"),
    ({"top_p": NAN}, "'top_p'"),
    ({"presence_penalty": -INF}, "'presence_penalty'"),
    ({"frequency_penalty": NAN}, "'frequency_penalty'"),
    ({"repetition_penalty": INF}, "'repetition_penalty'"),
    ({"timeout": INF}, "'timeout'"),
    ({"logit_bias": {"50256": NAN}}, "'logit_bias.50256'"),
    ({"extra_body": {"options": [1.0, -INF]}}, "'extra_body.options[1]'"),
]


@pytest.mark.parametrize(("kwargs", "where"), NON_FINITE)
def test_completion_refuses_a_non_finite_parameter(
    tmp_path: Path, fp: FakeProvider, kwargs: dict[str, Any], where: str
) -> None:
    policy = _policy(tmp_path, fp)

    with pytest.raises(RequestError, match="not a finite number") as info:
        policyroute.completion(policy=policy, messages=HI, **kwargs)

    assert where in str(info.value)
    assert fp.requests == []


@pytest.mark.parametrize(("kwargs", "where"), NON_FINITE[:2] + NON_FINITE[-2:])
def test_chat_policy_route_refuses_a_non_finite_parameter(
    tmp_path: Path, fp: FakeProvider, kwargs: dict[str, Any], where: str
) -> None:
    llm = ChatPolicyRoute(policy=_policy(tmp_path, fp))

    with pytest.raises(RequestError, match="not a finite number") as info:
        llm.invoke("hi", **kwargs)

    assert where in str(info.value)
    assert fp.requests == []


def test_chat_policy_route_refuses_a_non_finite_model_kwarg(
    tmp_path: Path, fp: FakeProvider
) -> None:
    with pytest.raises(RequestError, match="'top_p' holds nan"):
        ChatPolicyRoute(policy=_policy(tmp_path, fp), model_kwargs={"top_p": NAN})


def test_finite_numbers_still_pass(tmp_path: Path, fp: FakeProvider) -> None:
    policy = _policy(tmp_path, fp)

    policyroute.completion(
        policy=policy,
        messages=HI,
        temperature=0.0,
        top_p=1,
        timeout=30.5,
        logit_bias={"50256": -100.0},
    )

    assert len(fp.requests) == 1


def test_the_search_stops_eight_levels_down() -> None:
    check_params({"temperature": None, "extra_body": {"deep": [[[[[[[[NAN]]]]]]]]}})
    with pytest.raises(RequestError, match=r"'extra_body\.deep\[0\]'"):
        check_params({"extra_body": {"deep": [NAN]}})


@pytest.mark.parametrize("stream", ["yes", 1, 0, "false"])
def test_stream_that_is_not_a_bool_is_refused(
    tmp_path: Path, fp: FakeProvider, stream: Any
) -> None:
    # litellm answers stream=1 or "yes" unstreamed; read as truthy it would be a stream of
    # chunks where the caller's code may expect a response, or the other way round.
    policy = _policy(tmp_path, fp)

    with pytest.raises(RequestError, match=r"^request parameter 'stream' must be True or False"):
        policyroute.completion(policy=policy, messages=HI, stream=stream)

    async def main() -> None:
        await policyroute.acompletion(policy=policy, messages=HI, stream=stream)

    with pytest.raises(RequestError, match="'stream'"):
        asyncio.run(main())
    assert fp.requests == []


def test_stream_none_is_litellms_default(tmp_path: Path, fp: FakeProvider) -> None:
    response = policyroute.completion(policy=_policy(tmp_path, fp), messages=HI, stream=None)
    assert response.choices[0].message.content == "ok"


@pytest.mark.parametrize("accounting", [5, "receipts.jsonl", object()])
def test_accounting_that_is_not_one_is_refused(
    tmp_path: Path, fp: FakeProvider, accounting: Any
) -> None:
    # It failed with an AttributeError from inside the executor ('int' object has no
    # attribute 'admit'), and the executor built around it stayed cached for the next call.
    policy = _policy(tmp_path, fp)

    with pytest.raises(RequestError, match=r"^accounting must be .* got ") as info:
        policyroute.completion(policy=policy, messages=HI, accounting=accounting)
    assert "admit" in str(info.value)

    async def main() -> None:
        await policyroute.acompletion(policy=policy, messages=HI, accounting=accounting)

    with pytest.raises(RequestError, match=r"^accounting must be"):
        asyncio.run(main())
    assert fp.requests == []
