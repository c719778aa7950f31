"""ChatPolicyRoute against the fake provider: payloads, answers, usage and metadata."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from lc_support import Person, add, shout

from policyroute.errors import AllCandidatesFailedError
from policyroute.execution.hooks import NullAccounting
from policyroute.langchain import ChatPolicyRoute
from policyroute.testing import FakeProvider, Fault, Reply, ToolCall, Usage


def _body(fp: FakeProvider) -> dict[str, Any]:
    (recorded,) = fp.requests
    assert isinstance(recorded.body, dict)
    return recorded.body


def test_invoke_sends_call_params_and_returns_metadata(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    llm = ChatPolicyRoute(
        policy=make_policy(),
        temperature=0.2,
        max_tokens=50,
        stop=["END"],
        accounting=NullAccounting(),
    )
    fp.script("fake-fast", Reply(text="hi there", usage=Usage(prompt=7, completion=2, cached=3)))
    message = llm.invoke("hello")
    body = _body(fp)
    assert body["model"] == "fake-fast"
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 50
    assert body["stop"] == ["END"]
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert isinstance(message, AIMessage)
    assert message.content == "hi there"
    assert message.usage_metadata == {
        "input_tokens": 7,
        "output_tokens": 2,
        "total_tokens": 9,
        "input_token_details": {"cache_read": 3},
    }
    meta = message.response_metadata
    assert meta["model_name"] == "openai/fake-fast"
    assert meta["finish_reason"] == "stop"
    pr = meta["policyroute"]
    assert (pr["route"], pr["deployment"]) == ("default", "fast")
    assert [(a["deployment"], a["status"]) for a in pr["attempts"]] == [("fast", "ok")]
    assert isinstance(pr["cost"], str)
    assert pr["request_id"]


def test_call_stop_overrides_and_empty_stop_is_omitted(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), stop=[], accounting=NullAccounting())
    llm.invoke("a")
    assert "stop" not in fp.requests[0].body
    llm.invoke("b", stop=["x", "y"])
    assert fp.requests[1].body["stop"] == ["x", "y"]


async def _collect_async(llm: ChatPolicyRoute, text: str) -> list[AIMessageChunk]:
    return [chunk async for chunk in llm.astream(text)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_stream_reports_usage_and_metadata_exactly_once(
    llm: ChatPolicyRoute, fp: FakeProvider, mode: str
) -> None:
    import asyncio

    fp.script("fake-fast", Reply(text="one two three four", usage=Usage(prompt=4, completion=4)))
    chunks = list(llm.stream("go")) if mode == "sync" else asyncio.run(_collect_async(llm, "go"))
    assert len(chunks) > 2
    with_usage = [c for c in chunks if c.usage_metadata]
    with_meta = [c for c in chunks if c.response_metadata.get("policyroute")]
    assert len(with_usage) == 1
    assert with_usage == with_meta == [chunks[-1]]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == "one two three four"
    assert merged.usage_metadata == {"input_tokens": 4, "output_tokens": 4, "total_tokens": 8}
    assert merged.response_metadata["finish_reason"] == "stop"
    assert merged.response_metadata["model_name"] == "openai/fake-fast"
    assert _body(fp)["stream"] is True


def test_streaming_flag_streams_under_invoke(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), streaming=True, accounting=NullAccounting())
    message = llm.invoke("stream me")
    assert _body(fp)["stream"] is True
    assert message.content == "Hello from fake-fake-fast: stream me"
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] > 0
    assert message.response_metadata["policyroute"]["deployment"] == "fast"


def test_generate_honours_streaming_without_langchain_dispatch(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), streaming=True, accounting=NullAccounting())
    result = llm._generate([HumanMessage("direct")])
    assert _body(fp)["stream"] is True
    assert result.generations[0].message.content == "Hello from fake-fake-fast: direct"


def test_batch_and_abatch(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    import asyncio

    answers = llm.batch(["a b", "c d"])
    assert [m.content for m in answers] == [
        "Hello from fake-fake-fast: a b",
        "Hello from fake-fake-fast: c d",
    ]
    answers = asyncio.run(llm.abatch(["e", "f"]))
    assert sorted(str(m.content) for m in answers) == [
        "Hello from fake-fake-fast: e",
        "Hello from fake-fake-fast: f",
    ]
    assert len(fp.requests) == 4


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("any", "required"),
        (True, "required"),
        ("add", {"type": "function", "function": {"name": "add"}}),
        ("auto", "auto"),
        ("none", "none"),
        (None, None),
    ],
)
def test_tool_choice_payload(
    llm: ChatPolicyRoute, fp: FakeProvider, choice: Any, sent: Any
) -> None:
    llm.bind_tools([add, shout], tool_choice=choice).invoke("2 plus 3")
    body = _body(fp)
    assert [t["function"]["name"] for t in body["tools"]] == ["add", "shout"]
    assert body.get("tool_choice") == sent


def test_forced_tool_call_is_parsed(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    message = llm.bind_tools([add], tool_choice="add", parallel_tool_calls=False).invoke("2+3")
    assert _body(fp)["parallel_tool_calls"] is False
    assert [c["name"] for c in message.tool_calls] == ["add"]
    assert set(message.tool_calls[0]["args"]) == {"a", "b"}
    assert message.response_metadata["finish_reason"] == "tool_calls"


def test_streamed_tool_call_merges(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.script("fake-fast", Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 3}, id="call_1")]))
    merged: AIMessageChunk | None = None
    for chunk in llm.bind_tools([add]).stream("2+3"):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    assert merged.tool_calls == [
        {"name": "add", "args": {"a": 2, "b": 3}, "id": "call_1", "type": "tool_call"}
    ]
    assert merged.tool_call_chunks[0]["index"] == 0


def test_malformed_tool_arguments_become_invalid_tool_calls(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.script("fake-fast", Reply(tool_calls=[ToolCall("add", "{not json", id="c9")]))
    message = llm.bind_tools([add]).invoke("2+3")
    assert message.tool_calls == []
    assert message.invalid_tool_calls[0]["args"] == "{not json"
    assert message.invalid_tool_calls[0]["id"] == "c9"


def test_tool_history_and_images_are_sent_in_openai_form(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    history = [
        HumanMessage(
            content=[
                {"type": "text", "text": "what is this?"},
                {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"},
            ]
        ),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}]),
        ToolMessage("3", tool_call_id="c1"),
    ]
    llm.bind_tools([add]).invoke(history)
    sent = _body(fp)["messages"]
    assert sent[0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
    }
    assert sent[1]["role"] == "assistant"
    assert sent[1]["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a": 1, "b": 2}'}
    assert sent[2] == {"role": "tool", "tool_call_id": "c1", "content": "3"}


@pytest.mark.parametrize("method", ["json_schema", "json_mode", "function_calling"])
def test_structured_output(llm: ChatPolicyRoute, fp: FakeProvider, method: Any) -> None:
    if method == "json_mode":
        fp.script("fake-fast", Reply(text='{"name": "Ada", "age": 36}'))
    person = llm.with_structured_output(Person, method=method).invoke("who?")
    assert isinstance(person, Person)
    body = _body(fp)
    if method == "json_schema":
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema"
        assert fmt["json_schema"]["name"] == "Person"
        assert set(fmt["json_schema"]["schema"]["properties"]) == {"name", "age"}
    elif method == "json_mode":
        assert body["response_format"] == {"type": "json_object"}
        assert person == Person(name="Ada", age=36)
    else:
        assert body["tool_choice"] == {"type": "function", "function": {"name": "Person"}}


def test_structured_output_include_raw_reports_parsing_error(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.script("fake-fast", Reply(text="not json at all"))
    out = llm.with_structured_output(Person, method="json_mode", include_raw=True).invoke("x")
    assert isinstance(out["raw"], AIMessage)
    assert out["parsed"] is None
    assert out["parsing_error"] is not None
    ok = llm.with_structured_output(
        {"title": "P", "type": "object", "properties": {"n": {"type": "integer"}}},
        method="json_schema",
        include_raw=True,
    ).invoke("x")
    assert ok["parsing_error"] is None
    assert isinstance(ok["parsed"]["n"], int)


def test_outage_fails_over_with_attempts_in_metadata(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    fp.schedule_outage("fake-fast", failures=1)
    message = llm.invoke("still there?")
    meta = message.response_metadata
    assert meta["model_name"] == "openai/fake-backup"
    attempts = meta["policyroute"]["attempts"]
    assert [(a["deployment"], a["status"], a["error_class"]) for a in attempts] == [
        ("fast", "error", "server_error"),
        ("backup", "ok", None),
    ]


def test_total_outage_raises_the_policyroute_error(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.schedule_outage("fake-fast", failures=5)
    fp.schedule_outage("fake-backup", failures=5)
    with pytest.raises(AllCandidatesFailedError):
        llm.invoke("anyone?")


def test_identity_params_and_profile(fp: FakeProvider, make_policy: Callable[..., str]) -> None:
    llm = ChatPolicyRoute(policy=make_policy(), temperature=0.5, model="big")
    other = ChatPolicyRoute(policy=make_policy(name="other"), temperature=0.5)
    params = llm._identifying_params
    assert params["policy"] == "lc-tests"
    assert params["policy_hash"] == llm.compiled_policy.content_hash
    assert params["temperature"] == 0.5
    assert llm._get_llm_string() != other._get_llm_string()
    assert llm._llm_type == "policyroute"
    ls = llm._get_ls_params(stop=["s"])
    assert ls == {
        "ls_provider": "policyroute",
        "ls_model_name": "big",
        "ls_model_type": "chat",
        "ls_temperature": 0.5,
        "ls_stop": ["s"],
    }
    assert other._get_ls_params()["ls_model_name"] == "other"
    profile = llm.profile
    assert profile is not None
    assert profile["tool_calling"] is True
    assert profile["max_input_tokens"] == 64000
    assert profile["max_output_tokens"] == 4096


def test_profile_is_false_when_one_reachable_model_lacks_a_capability(
    fp: FakeProvider, make_policy: Callable[..., str]
) -> None:
    profile = ChatPolicyRoute(policy=make_policy(backup_tools=False)).profile
    assert profile is not None
    assert profile["tool_calling"] is False
    assert profile["structured_output"] is True


ANTHROPIC_POLICY = """policyroute: 1
name: lc-anthropic
models:
  claude:
    model: anthropic/fake-claude
    api_base: {base}
    api_key: ${{POLICYROUTE_TEST_KEY}}
    price: {{input_per_mtok: 3, output_per_mtok: 15}}
    capabilities: {{tools: true, vision: true, json_schema: true}}
routes:
  - name: default
    to: claude
receipts: {{sink: none}}
"""


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("any", {"type": "any"}),
        ("add", {"type": "tool", "name": "add"}),
        ("auto", {"type": "auto"}),
    ],
)
def test_anthropic_wire_gets_translated_tool_choice(
    fp: FakeProvider, choice: str, sent: dict[str, str]
) -> None:
    llm = ChatPolicyRoute(
        policy=ANTHROPIC_POLICY.format(base=fp.anthropic_base), accounting=NullAccounting()
    )
    message = llm.bind_tools([add, shout], tool_choice=choice).invoke("2 plus 3")
    body = _body(fp)
    assert body["tool_choice"] == sent
    assert [t["name"] for t in body["tools"]] == ["add", "shout"]
    if choice != "auto":
        assert message.tool_calls[0]["name"] == "add"
        assert message.usage_metadata is not None
        assert message.response_metadata["model_name"] == "anthropic/fake-claude"


def test_policy_from_path_text_or_compiled(
    fp: FakeProvider, make_policy: Callable[..., str], tmp_path: Any
) -> None:
    from policyroute.policy.loader import load_policy_text

    path = tmp_path / "p.yaml"
    path.write_text(make_policy())
    from_path = ChatPolicyRoute(policy=path, accounting=NullAccounting())
    from_str_path = ChatPolicyRoute(policy=str(path), accounting=NullAccounting())
    compiled = load_policy_text(make_policy())
    from_compiled = ChatPolicyRoute(policy=compiled, accounting=NullAccounting())
    assert from_compiled.compiled_policy is compiled
    hashes = {m.compiled_policy.content_hash for m in (from_path, from_str_path, from_compiled)}
    assert len(hashes) == 1
    assert from_path.invoke("hi").content == "Hello from fake-fake-fast: hi"


def test_broken_policy_fails_at_construction(make_policy: Callable[..., str]) -> None:
    from policyroute.errors import PolicyValidationError

    with pytest.raises(PolicyValidationError):
        ChatPolicyRoute(policy=make_policy().replace("to: [fast, backup]", "to: [fats]"))


def test_structured_output_rejects_unknown_arguments(llm: ChatPolicyRoute) -> None:
    from policyroute.errors import RequestError

    with pytest.raises(RequestError, match="unsupported arguments"):
        llm.with_structured_output(Person, mode="fast")
    with pytest.raises(RequestError, match="unknown structured output method"):
        llm.with_structured_output(Person, method="xml")  # type: ignore[arg-type]


def test_stream_failing_before_content_falls_over(llm: ChatPolicyRoute, fp: FakeProvider) -> None:
    fp.script("fake-fast", Fault.stream_cut(after=0))
    chunks = list(llm.stream("hi"))
    meta = chunks[-1].response_metadata["policyroute"]
    assert meta["deployment"] == "backup"
    assert "".join(str(c.content) for c in chunks) == "Hello from fake-fake-backup: hi"


def test_stream_broken_after_content_raises_and_reports_the_error(
    llm: ChatPolicyRoute, fp: FakeProvider
) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    from policyroute.errors import StreamInterruptedError

    class Errors(BaseCallbackHandler):
        def __init__(self) -> None:
            self.errors: list[BaseException] = []

        def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
            self.errors.append(error)

    handler = Errors()
    fp.script("fake-fast", Fault.stream_cut(after=3, reply=Reply(text="one two three four five")))
    received: list[str] = []

    def consume() -> None:
        for chunk in llm.stream("hi", config={"callbacks": [handler]}):
            received.append(str(chunk.content))

    with pytest.raises(StreamInterruptedError):
        consume()
    assert received
    assert not any(c for c in received if "five" in c)
    assert len(handler.errors) == 1
    assert isinstance(handler.errors[0], StreamInterruptedError)
