"""Structured output sends what langchain-openai's ChatOpenAI sends by default, where every
deployment can take it: ``parallel_tool_calls: false`` with ``function_calling`` (left out
where a deployment's provider would refuse it), and strict mode for a pydantic class with
``json_schema`` (left off where strict mode cannot say what the schema says)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lc_support import claude_and_gpt
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from policyroute.errors import RequestError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.langchain_.strict_schema import strict_expressible
from policyroute.testing import FakeProvider, Fault, Reply, ToolCall


class Person(BaseModel):
    """A person the user mentioned."""

    name: str
    age: int | None = None
    nick: str = "x"


def _body(fp: FakeProvider, n: int = -1) -> dict[str, Any]:
    body = fp.requests[n].body
    assert isinstance(body, dict)
    return body


def _person_call(fp: FakeProvider, model: str = "fake-fast") -> None:
    fp.script(model, Reply(tool_calls=[ToolCall("Person", {"name": "Ada", "nick": "a"})]))


# ------------------------------------------------------------------ parallel_tool_calls


def test_function_calling_asks_for_one_tool_call(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    _person_call(fp)
    runnable = llm.with_structured_output(Person, method="function_calling")
    assert runnable.invoke("who?") == Person(name="Ada", nick="a")
    assert _body(fp)["parallel_tool_calls"] is False
    fp.script("fake-fast", Reply(tool_calls=[ToolCall("T", {"a": 1})]))
    schema = {"title": "T", "type": "object", "properties": {"a": {"type": "integer"}}}
    structured = llm.with_structured_output(schema, method="function_calling")
    assert asyncio.run(structured.ainvoke("x")) == {"a": 1}
    assert _body(fp)["parallel_tool_calls"] is False


def test_parallel_tool_calls_the_caller_set_is_kept(fp: FakeProvider, llm: ChatPolicyRoute) -> None:
    _person_call(fp)
    llm.with_structured_output(Person, parallel_tool_calls=True).invoke("who?")
    assert _body(fp)["parallel_tool_calls"] is True
    configured = llm.model_copy(update={"model_kwargs": {"parallel_tool_calls": True}})
    _person_call(fp)
    configured.with_structured_output(Person).invoke("who?")
    assert _body(fp)["parallel_tool_calls"] is True


def test_parallel_tool_calls_without_tools_is_refused(llm: ChatPolicyRoute) -> None:
    with pytest.raises(RequestError, match="method='function_calling' only"):
        llm.with_structured_output(Person, method="json_schema", parallel_tool_calls=False)


def _gpt_only(fp: FakeProvider, gpt_model: str, gpt_params: str = "") -> ChatPolicyRoute:
    # Claude fails over to GPT: both deployments are reachable, GPT answers.
    policy = claude_and_gpt(
        fp.anthropic_base,
        fp.openai_base,
        name="parallel",
        first="gpt",
        gpt_model=gpt_model,
        gpt_params=gpt_params,
    )
    return ChatPolicyRoute(policy=policy, accounting=NullAccounting())


def test_left_out_where_a_deployment_does_not_take_it(fp: FakeProvider) -> None:
    # litellm refuses parallel_tool_calls for o3-mini before sending: had it been sent, the
    # call would have failed over to Claude.
    llm = _gpt_only(fp, "o3-mini")
    _person_call(fp, "o3-mini")
    assert llm.with_structured_output(Person).invoke("who?") == Person(name="Ada", nick="a")
    assert [r.model for r in fp.requests] == ["o3-mini"]
    assert "parallel_tool_calls" not in _body(fp)


def test_sent_where_the_deployment_sets_it_itself(fp: FakeProvider) -> None:
    # o3-mini's own params send it in any case: the call's value replaces theirs.
    llm = _gpt_only(fp, "o3-mini", "params: {parallel_tool_calls: true}")
    claude = "claude-sonnet-4-5"
    fp.script(claude, Reply(tool_calls=[ToolCall("Person", {"name": "Ada", "nick": "a"})]))
    assert llm.with_structured_output(Person).invoke("who?") == Person(name="Ada", nick="a")
    # litellm refused the parameter for o3-mini, and the call fell over to Claude.
    assert [r.model for r in fp.requests] == [claude]
    assert _body(fp)["tool_choice"]["disable_parallel_tool_use"] is True


def test_sent_where_the_deployment_drops_what_it_does_not_take(fp: FakeProvider) -> None:
    # With drop_params, litellm leaves the parameter out for o3-mini and sends the call there.
    llm = _gpt_only(fp, "o3-mini", "params: {drop_params: true}")
    _person_call(fp, "o3-mini")
    assert llm.with_structured_output(Person).invoke("who?") == Person(name="Ada", nick="a")
    assert [r.model for r in fp.requests] == ["o3-mini"]
    assert "parallel_tool_calls" not in _body(fp)


def test_each_deployment_is_asked_as_it_can_be(fp: FakeProvider) -> None:
    # o3-mini does not take the parameter and fails (a 500 here): the call falls over to
    # Claude, which gets it in Anthropic's form. Before, one such deployment anywhere in the
    # policy kept it from every deployment.
    llm = _gpt_only(fp, "o3-mini")
    fp.script("o3-mini", Fault.status(500))
    claude = "claude-sonnet-4-5"
    fp.script(claude, Reply(tool_calls=[ToolCall("Person", {"name": "Ada", "nick": "a"})]))
    assert llm.with_structured_output(Person).invoke("who?") == Person(name="Ada", nick="a")
    assert [r.model for r in fp.requests] == ["o3-mini", claude]
    assert "parallel_tool_calls" not in _body(fp, 0)
    assert _body(fp)["tool_choice"]["disable_parallel_tool_use"] is True


def test_a_route_that_turns_drop_params_off_is_not_sent_it(fp: FakeProvider) -> None:
    # The deployment's drop_params is overridden by the route's: litellm would refuse the
    # parameter for o3-mini, so it is not sent.
    policy = claude_and_gpt(
        fp.anthropic_base,
        fp.openai_base,
        name="parallel",
        first="gpt",
        gpt_model="o3-mini",
        gpt_params="params: {drop_params: true}",
    ).replace("    to: [gpt, claude]", "    to: [gpt, claude]\n    params: {drop_params: false}")
    assert "drop_params: false" in policy
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    _person_call(fp, "o3-mini")
    assert llm.with_structured_output(Person).invoke("who?") == Person(name="Ada", nick="a")
    assert [r.model for r in fp.requests] == ["o3-mini"]
    assert "parallel_tool_calls" not in _body(fp)


def test_callbacks_see_the_parameter_not_the_marker(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    seen: list[dict[str, Any]] = []

    class Params(BaseCallbackHandler):
        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            seen.append(kwargs["invocation_params"])

    _person_call(fp)
    llm.with_structured_output(Person).invoke("who?", config={"callbacks": [Params()]})
    assert seen[0]["parallel_tool_calls"] is False
    assert not any(key.startswith("policyroute") for key in seen[0])


def test_a_deployment_without_tools_does_not_count(fp: FakeProvider) -> None:
    # A call with tools never goes to o3-mini here: it is not asked whether it takes them.
    policy = claude_and_gpt(
        fp.anthropic_base,
        fp.openai_base,
        name="parallel",
        first="claude",
        gpt_model="o3-mini",
        gpt_params="capabilities: {tools: false}",
    )
    llm = ChatPolicyRoute(policy=policy, accounting=NullAccounting())
    fp.script(
        "claude-sonnet-4-5", Reply(tool_calls=[ToolCall("Person", {"name": "Ada", "nick": "a"})])
    )
    assert llm.with_structured_output(Person).invoke("who?") == Person(name="Ada", nick="a")
    # Anthropic's form of parallel_tool_calls=False.
    assert _body(fp)["tool_choice"]["disable_parallel_tool_use"] is True


# ------------------------------------------------------------------ json_schema strict mode


def _spec(fp: FakeProvider) -> dict[str, Any]:
    spec: dict[str, Any] = _body(fp)["response_format"]["json_schema"]
    return spec


def test_a_pydantic_class_goes_strict_by_default(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.script("fake-fast", Reply(text='{"name": "Ada", "age": null, "nick": "a"}'))
    person = llm.with_structured_output(Person, method="json_schema").invoke("who?")
    assert person == Person(name="Ada", nick="a")
    spec = _spec(fp)
    assert spec["strict"] is True
    assert spec["schema"]["required"] == ["name", "age", "nick"]
    assert spec["schema"]["additionalProperties"] is False
    assert "default" not in spec["schema"]["properties"]["age"]


def test_strict_false_keeps_the_schema_as_written(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.script("fake-fast", Reply(text='{"name": "Ada"}'))
    llm.with_structured_output(Person, method="json_schema", strict=False).invoke("who?")
    spec = _spec(fp)
    assert spec["strict"] is False
    assert spec["schema"]["required"] == ["name"]


class Tally(BaseModel):
    counts: dict[str, int]


class Tree(BaseModel):
    value: int
    children: list[Tree] = []


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


class Short(BaseModel):
    code: str = Field(max_length=3)


class Row(TypedDict):
    a: int


@pytest.mark.parametrize(
    ("schema", "answer"),
    [
        (Tally, '{"counts": {"a": 1}}'),
        (Tree, '{"value": 1, "children": [{"value": 2}]}'),
        (Loose, '{"name": "n", "more": 1}'),
        (Short, '{"code": "abc"}'),
        (Row, '{"a": 1}'),
    ],
)
def test_schemas_strict_mode_cannot_express_are_sent_as_before(
    llm: ChatPolicyRoute, fp: FakeProvider, schema: Any, answer: str
) -> None:
    fp.script("fake-fast", Reply(text=answer))
    llm.with_structured_output(schema, method="json_schema").invoke("x")
    spec = _spec(fp)
    assert "strict" not in spec
    assert spec["schema"].get("additionalProperties") is not False


def test_strict_expressible_reads_openais_subset() -> None:
    def obj(**properties: Any) -> dict[str, Any]:
        return {"type": "object", "properties": properties}

    assert strict_expressible(obj(a={"type": "string", "format": "date-time"}))
    assert strict_expressible(obj(a={"anyOf": [{"type": "integer"}, {"type": "null"}]}))
    assert strict_expressible(obj(a={"type": ["string", "null"], "enum": ["x", None]}))
    assert not strict_expressible({"type": "array", "items": {"type": "string"}})
    assert not strict_expressible(obj(a={"type": "string", "format": "uri"}))
    assert not strict_expressible(obj(a={"oneOf": [{"type": "integer"}]}))
    assert not strict_expressible(obj(a={"type": "object", "additionalProperties": True}))
    assert not strict_expressible(obj(a={"type": "array", "items": {}}))
    deep: dict[str, Any] = {"type": "integer"}
    for _ in range(10):
        deep = obj(a=deep)
    assert strict_expressible(deep)
    assert not strict_expressible(obj(a=deep))
    assert not strict_expressible(obj(**{f"p{n}": {"type": "string"} for n in range(5001)}))
    assert not strict_expressible(obj(a={"type": "integer", "enum": list(range(1001))}))
