"""JSON mode on Claude deployments, per deployment tried.

Anthropic has no JSON mode, and litellm sends nothing for ``response_format={"type":
"json_object"}`` there: Claude answered in prose and parsing failed. Each attempt on an
Anthropic-format deployment now gets what Claude honours: the schema given to
``with_structured_output(..., method="json_mode")`` as a ``json_schema`` response format (as
langchain-anthropic does), or, with no schema, a system instruction to answer with one JSON
object. Every other deployment of the route, tried before or after, gets ``json_object``
unchanged and never the carried schema.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import policyroute
from policyroute.execution.hooks import NullAccounting
from policyroute.execution.response_format import JSON_INSTRUCTION, SCHEMA_KEY
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply

CLAUDE = "claude-sonnet-4-5"
GPT = "gpt-4o"
JSON_OBJECT = {"type": "json_object"}


class Person(BaseModel):
    name: str
    age: int


PERSON_SCHEMA = {
    "title": "Person",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.fixture(autouse=True)
def key() -> Iterator[None]:
    os.environ["JSON_MODE_KEY"] = "sk-test"
    yield
    os.environ.pop("JSON_MODE_KEY", None)


def policy(fp: FakeProvider, order: str) -> str:
    """Claude and GPT on one route in ``order``; no retries."""
    return f"""
policyroute: 1
name: json-mode
models:
  claude:
    model: anthropic/{CLAUDE}
    api_base: {fp.anthropic_base}
    api_key: ${{JSON_MODE_KEY}}
    price: {{input_per_mtok: 3, output_per_mtok: 15}}
  gpt:
    model: openai/{GPT}
    api_base: {fp.openai_base}
    api_key: ${{JSON_MODE_KEY}}
    price: {{input_per_mtok: 3, output_per_mtok: 15}}
routes:
  - name: default
    to: [{order}]
defaults:
  retry: {{attempts: 0}}
receipts: {{sink: none}}
"""


def route(fp: FakeProvider, order: str = "claude, gpt") -> ChatPolicyRoute:
    return ChatPolicyRoute(policy=policy(fp, order), accounting=NullAccounting(), max_tokens=400)


def sent(fp: FakeProvider) -> dict[str, dict[str, Any]]:
    out = {}
    for recorded in fp.requests:
        assert isinstance(recorded.body, dict)
        assert recorded.model is not None
        out[recorded.model] = recorded.body
    return out


def claude_schema(body: dict[str, Any]) -> dict[str, Any]:
    """The schema Claude was asked to answer in: litellm sends it as Anthropic's
    ``output_format`` where the model supports it, else as a forced tool."""
    if "output_format" in body:
        assert body["output_format"]["type"] == "json_schema"
        schema: dict[str, Any] = body["output_format"]["schema"]
        return schema
    (tool,) = body["tools"]
    schema = tool["input_schema"]
    return schema


def system_text(body: dict[str, Any]) -> str:
    system = body.get("system", "")
    if isinstance(system, str):
        return system
    return "\n".join(block["text"] for block in system)


async def _collect(runnable: Any, how: str) -> Any:
    if how == "ainvoke":
        return await runnable.ainvoke("who? answer in JSON")
    chunks = [chunk async for chunk in runnable.astream("who? answer in JSON")]
    return chunks[-1]


def run(runnable: Any, how: str) -> Any:
    if how == "invoke":
        return runnable.invoke("who? answer in JSON")
    if how == "stream":
        *_, result = runnable.stream("who? answer in JSON")
        return result
    return asyncio.run(_collect(runnable, how))


@pytest.mark.parametrize("how", ["invoke", "stream", "ainvoke", "astream"])
def test_json_mode_on_claude_sends_the_pydantic_schema(fp: FakeProvider, how: str) -> None:
    runnable = route(fp).with_structured_output(Person, method="json_mode")
    result = run(runnable, how)
    assert isinstance(result, Person)
    body = sent(fp)[CLAUDE]
    schema = claude_schema(body)
    assert set(schema["properties"]) == {"name", "age"}
    assert schema["properties"]["age"]["type"] == "integer"
    assert SCHEMA_KEY not in json.dumps(body)
    assert JSON_INSTRUCTION not in system_text(body)  # the schema says it all
    assert GPT not in sent(fp)


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_json_mode_on_claude_answers_with_the_scripted_object(fp: FakeProvider, how: str) -> None:
    fp.script(CLAUDE, Reply(text='{"name": "Ada", "age": 36}'))
    runnable = route(fp).with_structured_output(PERSON_SCHEMA, method="json_mode")
    assert run(runnable, how) == {"name": "Ada", "age": 36}
    assert set(claude_schema(sent(fp)[CLAUDE])["properties"]) == {"name", "age"}


def test_json_mode_with_raw_on_claude(fp: FakeProvider) -> None:
    fp.script(CLAUDE, Reply(text='{"name": "Ada", "age": 36}'))
    runnable = route(fp).with_structured_output(Person, method="json_mode", include_raw=True)
    out = runnable.invoke("who? answer in JSON")
    assert out["parsed"] == Person(name="Ada", age=36)
    assert out["parsing_error"] is None
    assert "properties" in claude_schema(sent(fp)[CLAUDE])


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_openai_first_then_claude_after_a_fallback(fp: FakeProvider, how: str) -> None:
    fp.script(GPT, Fault.status(503))
    runnable = route(fp, "gpt, claude").with_structured_output(Person, method="json_mode")
    assert isinstance(run(runnable, how), Person)
    bodies = sent(fp)
    assert bodies[GPT]["response_format"] == JSON_OBJECT
    assert SCHEMA_KEY not in json.dumps(bodies[GPT])
    assert set(claude_schema(bodies[CLAUDE])["properties"]) == {"name", "age"}
    assert SCHEMA_KEY not in json.dumps(bodies[CLAUDE])


@pytest.mark.parametrize("how", ["invoke", "stream"])
def test_claude_first_then_openai_gets_json_object_unchanged(fp: FakeProvider, how: str) -> None:
    fp.script(CLAUDE, Fault.status(503))
    fp.script(GPT, Reply(text='{"name": "Ada", "age": 36}'))
    runnable = route(fp).with_structured_output(Person, method="json_mode")
    assert run(runnable, how) == Person(name="Ada", age=36)
    bodies = sent(fp)
    assert "properties" in claude_schema(bodies[CLAUDE])
    gpt = bodies[GPT]
    assert gpt["response_format"] == JSON_OBJECT
    assert SCHEMA_KEY not in json.dumps(gpt)
    assert [m["role"] for m in gpt["messages"]] == ["user"]


def test_completion_json_object_on_claude_adds_the_instruction(fp: FakeProvider) -> None:
    fp.script(CLAUDE, Reply(text='{"ok": true}'))
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "status? answer in JSON"},
    ]
    response = policyroute.completion(
        policy=policy(fp, "claude, gpt"),
        messages=messages,
        response_format=JSON_OBJECT,
        accounting=NullAccounting(),
    )
    assert json.loads(response.choices[0].message.content) == {"ok": True}
    body = sent(fp)[CLAUDE]
    system = system_text(body)
    # After the caller's own system prompt, which stays the (cacheable) prefix.
    assert system.startswith("You are terse.")
    assert system.endswith(JSON_INSTRUCTION)
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert len(messages) == 2  # the caller's list is not changed


def test_completion_stream_json_object_on_claude_adds_the_instruction(fp: FakeProvider) -> None:
    fp.script(CLAUDE, Reply(text='{"ok": true}'))
    stream = policyroute.completion(
        policy=policy(fp, "claude, gpt"),
        messages=[{"role": "user", "content": "status? answer in JSON"}],
        response_format=JSON_OBJECT,
        stream=True,
        accounting=NullAccounting(),
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert json.loads(text) == {"ok": True}
    assert system_text(sent(fp)[CLAUDE]) == JSON_INSTRUCTION


def test_completion_json_object_falls_over_from_claude_to_openai(fp: FakeProvider) -> None:
    fp.script(CLAUDE, Fault.status(503))
    fp.script(GPT, Reply(text='{"ok": true}'))
    messages = [{"role": "user", "content": "status? answer in JSON"}]
    response = policyroute.completion(
        policy=policy(fp, "claude, gpt"),
        messages=messages,
        response_format=JSON_OBJECT,
        accounting=NullAccounting(),
    )
    assert json.loads(response.choices[0].message.content) == {"ok": True}
    bodies = sent(fp)
    assert system_text(bodies[CLAUDE]) == JSON_INSTRUCTION
    assert bodies[GPT]["response_format"] == JSON_OBJECT
    assert bodies[GPT]["messages"] == messages  # no instruction for OpenAI


def test_completion_json_object_falls_over_from_openai_to_claude(fp: FakeProvider) -> None:
    fp.script(GPT, Fault.status(503))
    fp.script(CLAUDE, Reply(text='{"ok": true}'))
    messages = [{"role": "user", "content": "status? answer in JSON"}]
    policyroute.completion(
        policy=policy(fp, "gpt, claude"),
        messages=messages,
        response_format=JSON_OBJECT,
        accounting=NullAccounting(),
    )
    bodies = sent(fp)
    assert bodies[GPT]["messages"] == messages
    assert bodies[GPT]["response_format"] == JSON_OBJECT
    assert system_text(bodies[CLAUDE]) == JSON_INSTRUCTION
